"""The answer webhook of an outbound call (`/twilio/voice?outbound=<id>`, Direction
outbound-api): `call.started` from the outbound request — direction outbound, the outbound
script as the system prompt, its opening line as the greeting — then the same
`<Connect><Stream>` as an inbound call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import HTTPException, Request, status
from pydantic import ValidationError

from services.gateway import twiml
from shared.bus.streams import CallLog
from shared.contract import keys, stream_token
from shared.contract.events import CallStarted
from shared.db.models import OutboundCallRequest
from shared.runtime.settings import Settings
from shared.tenancy.outbound_prompt import ReservationDetails, opening_line, outbound_system_prompt
from shared.tenancy.tenant_directory import find_by_number


async def outbound_voice(request: Request, form: dict[str, str]) -> str:
    """Start the outbound conversation (the form is already signature-checked); its TwiML."""
    settings: Settings = request.app.state.settings
    call_sid = form.get("CallSid", "")
    request_id = request.query_params.get("outbound", "")
    async with request.app.state.sessions() as session:
        row = await session.get(OutboundCallRequest, request_id, with_for_update=True)
        if row is None or form.get("From") != row.from_number:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such outbound call")
        profile = await find_by_number(session, row.from_number)
        if profile is None or profile.tenant_id != row.tenant_id:
            return twiml.hangup()
        try:
            details = ReservationDetails.model_validate(row.details)
        except ValidationError:
            return twiml.hangup()
        if call_sid not in row.twilio_call_sids:
            row.twilio_call_sids = [*row.twilio_call_sids, call_sid]
        if row.status != "completed":
            row.status = "in_progress"
            row.last_call_status = "in-progress"
            row.next_attempt_at = datetime.now(UTC) + timedelta(
                seconds=settings.outbound_max_call_s + settings.outbound_dial_lease_s
            )
        await session.commit()
    event = CallStarted(
        call_sid=call_sid,
        tenant_id=profile.tenant_id,
        from_number=row.from_number,
        to_number=row.to_number,
        direction="outbound",
        pipeline=profile.pipeline,
        business_name=profile.name,
        greeting=opening_line(details),
        system_prompt=outbound_system_prompt(details, profile.name),
        voice=profile.voice,
        language=profile.language,
        keyterms=[t for t in (details.restaurant_name, details.customer_name) if t],
        max_call_s=settings.outbound_max_call_s,
        recording=settings.recordings_enabled and profile.recording,
        speech="local" if profile.speech == "local" else "vendor",
    )
    log: CallLog = request.app.state.log
    if not await log.entries(call_sid):  # Twilio may retry the webhook: start the call once
        await log.append(event)
        await log.publish(keys.CALLS, {"call_sid": call_sid, "type": event.type})
    token = stream_token.issue(settings.stream_token_secret, call_sid, settings.stream_token_ttl_s)
    action = settings.public_gateway_url.rstrip("/") + "/twilio/after-stream"
    disclosure = profile.recording_disclosure if event.recording else ""
    return twiml.connect_stream(settings.public_media_ws_url, action, token, disclosure)
