"""Twilio voice webhooks: the incoming call (TwiML) and the after-stream decision."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from services.gateway import twiml
from services.gateway.after_stream import decide_call
from services.gateway.outbound.voice import outbound_voice
from services.gateway.signature import validated_form
from services.gateway.voice_answers import AnswerPendingError, answer_once
from shared.bus.streams import CallLog
from shared.contract import keys, stream_token
from shared.contract.events import CallStarted
from shared.runtime.logs import call_sid_var, tenant_var
from shared.runtime.settings import Settings
from shared.runtime.telemetry import tracer
from shared.tenancy.prompting import build_system_prompt
from shared.tenancy.tenant_directory import TenantProfile, find_by_number

router = APIRouter(prefix="/twilio", tags=["twilio"], include_in_schema=False)
_tracer = tracer(__name__)


def _xml(body: str) -> Response:
    return Response(content=body, media_type="text/xml")


@router.post("/voice")
async def voice(request: Request) -> Response:
    """Incoming call: find the business by the called number and connect a Media Stream.
    Answered once per CallSid: a retried or replayed request gets the first answer back."""
    settings: Settings = request.app.state.settings
    form = await validated_form(request, settings.twilio_auth_token, settings.public_gateway_url)
    call_sid = form.get("CallSid", "")
    if not call_sid:
        raise HTTPException(status_code=400, detail="CallSid missing or malformed")
    call_sid_var.set(call_sid)  # on this request's log lines

    async def make() -> str:
        return await _answer(request, settings, form)

    log: CallLog = request.app.state.log
    try:
        body = await answer_once(log.redis, call_sid, settings.voice_answer_ttl_s, make)
    except AnswerPendingError as exc:
        raise HTTPException(503, "the first request for this call is still being answered") from exc
    return _xml(body)


async def _answer(request: Request, settings: Settings, form: dict[str, str]) -> str:
    """The TwiML for a new call (starts it: `call.started` on the call's stream)."""
    call_sid, to_number = form["CallSid"], form.get("To", "")
    with _tracer.start_as_current_span("call", attributes={"call.sid": call_sid}):
        if form.get("Direction") == "outbound-api" and request.query_params.get("outbound"):
            return await outbound_voice(request, form)  # a call we placed (outbound API)
        async with request.app.state.sessions() as session:
            profile = await find_by_number(session, to_number)
        if profile is None:
            return twiml.unknown_number()
        tenant_var.set(profile.tenant_id)
        direction = form.get("Direction", "")
        event = CallStarted(
            call_sid=call_sid,
            tenant_id=profile.tenant_id,
            from_number=form.get("From", ""),
            to_number=to_number,
            direction="outbound" if direction.startswith("outbound") else "inbound",
            pipeline=profile.pipeline,
            business_name=profile.name,
            greeting=profile.greeting,
            system_prompt=build_system_prompt(profile),
            voice=profile.voice,
            language=profile.language,
            keyterms=_keyterms(profile),
            transfer_number=profile.transfer_number or "",
            max_call_s=profile.max_call_minutes * 60,
            conversation=profile.conversation,
            recording=settings.recordings_enabled and profile.recording,
        speech="local" if profile.speech == "local" else "vendor",
        )
        log: CallLog = request.app.state.log
        await log.append(event)
        await log.publish(keys.CALLS, {"call_sid": call_sid, "type": event.type})
    token = stream_token.issue(settings.stream_token_secret, call_sid, settings.stream_token_ttl_s)
    action = settings.public_gateway_url.rstrip("/") + "/twilio/after-stream"
    disclosure = profile.recording_disclosure if event.recording else ""
    return twiml.connect_stream(settings.public_media_ws_url, action, token, disclosure)


def _keyterms(profile: TenantProfile) -> list[str]:
    """Words STT should favour: the business, its services and its staff."""
    terms = [profile.name, *(s.name for s in profile.services), *(s.name for s in profile.staff)]
    return list(dict.fromkeys(t for t in terms if t))[:50]


@router.post("/after-stream")
async def after_stream(request: Request) -> Response:
    """The stream ended: transfer, hang up, or resume on another media replica."""
    settings: Settings = request.app.state.settings
    form = await validated_form(request, settings.twilio_auth_token, settings.public_gateway_url)
    call_sid = form.get("CallSid", "")
    log: CallLog = request.app.state.log
    decision, _ = await decide_call(log, call_sid, settings.after_stream_max_wait_ms)
    if decision.action == "transfer":
        return _xml(twiml.dial(decision.target, decision.caller_id))
    if decision.action == "apologize":
        return _xml(twiml.apologize())
    if decision.action == "reconnect":
        token = stream_token.issue(
            settings.stream_token_secret, call_sid, settings.stream_token_ttl_s
        )
        action = settings.public_gateway_url.rstrip("/") + "/twilio/after-stream"
        return _xml(twiml.connect_stream(settings.public_media_ws_url, action, token))
    return _xml(twiml.hangup())
