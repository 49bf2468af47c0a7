"""Twilio's callbacks for outbound calls (all signed): call progress and async AMD.

`POST /twilio/outbound-status?outbound=<id>`: initiated / ringing / in-progress move the request
along; `completed` completes it with the outcome the agent reported; busy / no-answer dial again
later (bounded by the request's attempts) or complete it as busy / no_answer; failed / canceled
complete it as failed. Telephony minutes are then metered like every other call.

`POST /twilio/amd?outbound=<id>`: the answering-machine verdict. When the greeting of a machine
has ended (`machine_end_*`), the agent gets a turn telling it to leave the voicemail now.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import twilio_status
from services.gateway.outbound.outcome import finish, retry_or_finish
from services.gateway.outbound.twilio_calls import DialError, TwilioCalls
from services.gateway.signature import validated_form
from shared.bus.streams import CallLog
from shared.contract import events as ev
from shared.contract import keys
from shared.db.models import OutboundCallRequest
from shared.runtime.settings import Settings
from shared.tenancy.outbound_prompt import VOICEMAIL_CUE

router = APIRouter(prefix="/twilio", tags=["twilio"], include_in_schema=False)
log = logging.getLogger(__name__)

RETRYABLE = {"busy": "busy", "no-answer": "no_answer"}
"""Final call statuses that are worth dialling again -> their outcome once attempts run out."""
MACHINE_DONE = ("machine_end_beep", "machine_end_silence", "machine_end_other")


def _now() -> datetime:
    return datetime.now(UTC)


async def _signed(request: Request) -> tuple[dict[str, str], str, str]:
    settings: Settings = request.app.state.settings
    form = await validated_form(request, settings.twilio_auth_token, settings.public_gateway_url)
    call_sid = form.get("CallSid", "")
    request_id = request.query_params.get("outbound", "")
    if not call_sid.startswith("CA") or len(call_sid) > 64 or not request_id:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "CallSid or outbound id missing")
    return form, call_sid, request_id


@router.post("/outbound-status", status_code=status.HTTP_204_NO_CONTENT)
async def outbound_status(request: Request) -> Response:
    """Move the outbound request along with the call's progress."""
    form, call_sid, request_id = await _signed(request)
    call_status = form.get("CallStatus", "")
    settings: Settings = request.app.state.settings
    async with request.app.state.sessions() as session:
        row = await session.get(OutboundCallRequest, request_id, with_for_update=True)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "outbound request not found")
        if call_sid not in row.twilio_call_sids:
            if row.status != "dialing":  # a late callback of an attempt we know nothing of
                log.warning("status %s of unknown call %s for %s", call_status, call_sid, row.id)
                return Response(status_code=status.HTTP_204_NO_CONTENT)
            row.twilio_call_sids = [*row.twilio_call_sids, call_sid]  # it beat the dialler
        if call_sid == row.twilio_call_sids[-1] and row.status != "completed":
            row.last_call_status = call_status
            await _advance(session, row, call_status, form, settings)
        await session.commit()
    if call_status == "completed":
        await twilio_status.call_status(request)  # telephony minutes, like any call
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _advance(
    session: AsyncSession,
    row: OutboundCallRequest,
    call_status: str,
    form: dict[str, str],
    settings: Settings,
) -> None:
    now = _now()
    if call_status == "in-progress":
        row.status = "in_progress"
        row.next_attempt_at = now + timedelta(
            seconds=settings.outbound_max_call_s + settings.outbound_dial_lease_s
        )
    elif call_status == "completed":
        details = dict(row.outcome_details or {})
        duration = form.get("CallDuration", "")
        details["duration_s"] = int(duration) if duration.isdigit() else None
        if row.outcome is None:
            details["reason"] = "the call ended before an outcome was reported"
        await finish(session, row, row.outcome or "failed", details, now)
    elif call_status in RETRYABLE:
        await retry_or_finish(session, row, RETRYABLE[call_status], now, f"call {call_status}")
    elif call_status in ("failed", "canceled"):
        await finish(session, row, "failed", {"reason": f"call {call_status}"}, now)


@router.post("/amd", status_code=status.HTTP_204_NO_CONTENT)
async def amd_result(request: Request) -> Response:
    """Store the answering-machine verdict; after a machine's beep, cue the voicemail."""
    form, call_sid, request_id = await _signed(request)
    answered_by = form.get("AnsweredBy", "unknown")[:32]
    async with request.app.state.sessions() as session:
        row = await session.get(OutboundCallRequest, request_id, with_for_update=True)
        if row is None or call_sid not in row.twilio_call_sids:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "outbound call not found")
        row.answered_by = answered_by
        live = row.status in ("dialing", "in_progress") and row.outcome is None
        tenant_id = row.tenant_id
        if answered_by == "fax" and live:
            row.outcome = "failed"
            row.outcome_details = {"reason": "a fax machine answered"}
            row.outcome_at = _now()
        await session.commit()
    if answered_by == "fax" and live:
        calls: TwilioCalls = request.app.state.outbound_calls
        try:
            await calls.hang_up(call_sid)
        except DialError as exc:
            log.warning("could not hang up on a fax (%s): %s", call_sid, exc)
    elif answered_by in MACHINE_DONE and live:
        await _cue_voicemail(request.app.state.log, call_sid, tenant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _cue_voicemail(log_: CallLog, call_sid: str, tenant_id: str) -> None:
    """A turn for the agent: the beep has sounded, leave the message now.

    The brain answers it on the cascade; media hands it to a provider voice agent as a typed
    user message. Its id follows the highest turn in the log. Media numbers its own turns in
    memory, so a caller turn after this one could reuse the id; after a machine's beep nobody
    speaks again.
    """
    entries = await log_.entries(call_sid)
    started = next((e for _, e in entries if isinstance(e, ev.CallStarted)), None)
    if started is None:
        log.warning("AMD for %s before call.started; no voicemail cue", call_sid)
        return
    turn_id = 1 + max((getattr(e, "turn_id", 0) or 0 for _, e in entries), default=0)
    entry = await log_.append(
        ev.TurnRequested(
            call_sid=call_sid,
            tenant_id=tenant_id,
            turn_id=turn_id,
            text=VOICEMAIL_CUE,
            source="system",
        )
    )
    if started.pipeline == "cascade":  # a provider voice agent gets it from media instead
        await log_.publish(
            keys.TURNS, {"call_sid": call_sid, "turn_id": str(turn_id), "entry_id": entry}
        )
