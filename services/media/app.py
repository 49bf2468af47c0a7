"""Media service: terminates Twilio Media Streams WebSockets."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket
from twilio.request_validator import RequestValidator

from services.media.call_session import CallSession, MediaDeps
from shared.bus import CallLog, connect
from shared.settings import Settings
from shared.stream_mux import StreamMux

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """The media service's ASGI app."""
    redis_url = settings.redis_url or ""
    replica = settings.replica_name or f"{socket.gethostname()}-{os.getpid()}"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect(redis_url)
        mux = StreamMux.from_url(
            redis_url,
            cluster=settings.redis_cluster,
            block_ms=settings.stream_block_ms,
            reader_id=replica,
        )
        app.state.deps = MediaDeps(
            settings=settings,
            log=CallLog(redis, settings.stream_slot_groups),
            mux=mux,
            replica=replica,
        )
        yield
        await mux.close()
        await redis.aclose()

    app = FastAPI(title="FrontDesk media", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "replica": replica}

    @app.websocket("/twilio/stream")
    async def twilio_stream(ws: WebSocket) -> None:
        if settings.validate_ws_signature:
            signature = ws.headers.get("x-twilio-signature", "")
            validator = RequestValidator(settings.twilio_auth_token)
            if not signature or not validator.validate(settings.public_media_ws_url, {}, signature):
                log.warning("rejected media stream upgrade: bad X-Twilio-Signature")
                await ws.close(code=1008, reason="invalid Twilio signature")
                return
        await CallSession(ws, app.state.deps).run()

    return app
