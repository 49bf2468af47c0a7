"""Twilio's call status callback (`POST /twilio/status`, signed): a completed call's duration
becomes telephony-minutes usage, and the recorder is told to price the call again; a call
that completed before (or between) streams gets its `call.ended` here.

Point the number's (or the outbound call's) `StatusCallback` here, with event `completed`.
Twilio bills per started minute, so the metered quantity is ceil(CallDuration / 60).
"""

from __future__ import annotations

import math
from decimal import Decimal

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from services.gateway.after_stream import NO_STREAM
from services.gateway.signature import validated_form
from shared.bus.call_end import end_call
from shared.bus.streams import CallLog
from shared.contract import events as ev
from shared.contract import keys
from shared.db.models import Call, PhoneNumber, UsageRecord
from shared.runtime.settings import Settings

router = APIRouter(prefix="/twilio", tags=["twilio"], include_in_schema=False)

TELEPHONY_USAGE = "usage.telephony"
"""`fd:calls` work item type the recorder prices calls again on."""
SOURCE = "twilio-status"
MAX_DURATION_S = 7 * 24 * 3600


def billable_minutes(duration_s: int) -> int:
    """Started minutes of a call of `duration_s` seconds."""
    return math.ceil(duration_s / 60)


@router.post("/status", status_code=status.HTTP_204_NO_CONTENT)
async def call_status(request: Request) -> Response:
    """Meter a completed call's minutes (idempotent: Twilio may retry the callback)."""
    settings: Settings = request.app.state.settings
    form = await validated_form(request, settings.twilio_auth_token, settings.public_gateway_url)
    call_sid = form.get("CallSid", "")
    if not call_sid.startswith("CA") or len(call_sid) > 64:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "CallSid missing or malformed")
    if form.get("CallStatus") != "completed":
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    raw = form.get("CallDuration", "")
    if not raw.isdigit() or int(raw) > MAX_DURATION_S:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "CallDuration must be whole seconds")
    async with request.app.state.sessions() as session:
        tenant_id = await session.scalar(select(Call.tenant_id).where(Call.call_sid == call_sid))
        if tenant_id is None:
            number = form.get("From") if form.get("Direction", "").startswith("outbound") else None
            tenant_id = await session.scalar(
                select(PhoneNumber.tenant_id).where(
                    PhoneNumber.e164 == (number or form.get("To", ""))
                )
            )
        await session.execute(
            insert(UsageRecord)
            .values(
                call_sid=call_sid,
                tenant_id=tenant_id,
                source=SOURCE,
                provider="twilio",
                metric="telephony_minutes",
                quantity=Decimal(billable_minutes(int(raw))),
                at=func.now(),
            )
            .on_conflict_do_nothing(index_elements=["call_sid", "source", "provider", "metric"])
        )
        await session.commit()
    log: CallLog = request.app.state.log
    await end_if_open(log, call_sid, int(raw))
    await log.publish(keys.CALLS, {"call_sid": call_sid, "type": TELEPHONY_USAGE})
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def end_if_open(log: CallLog, call_sid: str, duration_s: int) -> None:
    """Twilio says the call is over: a call no media replica is serving and nobody ended
    (the caller hung up before the stream started, or during a move) gets `call.ended`."""
    entries = await log.entries(call_sid)
    started = next((e for _, e in entries if isinstance(e, ev.CallStarted)), None)
    if started is None or any(isinstance(e, ev.CallEnded) for _, e in entries):
        return
    streamed = any(isinstance(e, ev.StreamStarted) for _, e in entries)
    ended = ev.CallEnded(
        call_sid=call_sid,
        tenant_id=started.tenant_id,
        reason="caller-hangup" if streamed else NO_STREAM,
        duration_s=float(duration_s),
    )
    await end_call(log, ended, unless_live=True)  # a live stream: media ends it itself
