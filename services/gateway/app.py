"""Gateway: Twilio voice webhooks -> TwiML, and the after-stream decision."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response

from services.gateway import twiml
from services.gateway.signature import validated_form
from shared import keys, stream_token
from shared.bus import CallLog, connect
from shared.db.engine import make_engine, make_sessions
from shared.events import CallStarted
from shared.prompting import build_system_prompt
from shared.settings import Settings
from shared.telemetry import tracer
from shared.tenant_directory import find_by_number

_tracer = tracer(__name__)


def _xml(body: str) -> Response:
    return Response(content=body, media_type="text/xml")


def create_app(settings: Settings) -> FastAPI:
    """The gateway's ASGI app."""
    assert settings.redis_url and settings.database_url, "resolve URLs before creating the app"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = connect(settings.redis_url or "")
        app.state.log = CallLog(app.state.redis, settings.stream_slot_groups)
        app.state.engine = make_engine(settings.database_url or "")
        app.state.sessions = make_sessions(app.state.engine)
        yield
        await app.state.redis.aclose()
        await app.state.engine.dispose()

    app = FastAPI(title="FrontDesk gateway", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/twilio/voice")
    async def voice(request: Request) -> Response:
        form = await validated_form(
            request, settings.twilio_auth_token, settings.public_gateway_url
        )
        call_sid, to_number = form.get("CallSid", ""), form.get("To", "")
        if not call_sid.startswith("CA"):
            raise HTTPException(status_code=400, detail="CallSid missing or malformed")
        with _tracer.start_as_current_span("call", attributes={"call.sid": call_sid}):
            async with app.state.sessions() as session:
                profile = await find_by_number(session, to_number)
            if profile is None:
                return _xml(twiml.unknown_number())
            event = CallStarted(
                call_sid=call_sid,
                tenant_id=profile.tenant_id,
                from_number=form.get("From", ""),
                to_number=to_number,
                direction="outbound"
                if form.get("Direction", "").startswith("outbound")
                else "inbound",
                pipeline=profile.pipeline,
                business_name=profile.name,
                greeting=profile.greeting,
                system_prompt=build_system_prompt(profile),
                voice=profile.voice,
                language=profile.language,
            )
            log: CallLog = app.state.log
            await log.append(event)
            await log.publish(keys.CALLS, {"call_sid": call_sid, "type": event.type})
        token = stream_token.issue(
            settings.stream_token_secret, call_sid, settings.stream_token_ttl_s
        )
        action = settings.public_gateway_url.rstrip("/") + "/twilio/after-stream"
        return _xml(twiml.connect_stream(settings.public_media_ws_url, action, token))

    @app.post("/twilio/after-stream")
    async def after_stream(request: Request) -> Response:
        await validated_form(request, settings.twilio_auth_token, settings.public_gateway_url)
        return _xml(twiml.hangup())

    return app
