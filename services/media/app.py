"""Media service: terminates Twilio Media Streams WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response, WebSocket
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from redis.asyncio import Redis
from twilio.request_validator import RequestValidator

from services.media.agent_speech.greeting_cache import GreetingCache
from services.media.call_session import CallSession, MediaDeps
from services.media.caller.vad import load_vad_model
from services.media.live_calls import LiveCalls
from services.media.provider_clients import ProviderClients
from shared.bus.mux import StreamMux
from shared.bus.streams import CallLog, connect
from shared.runtime.process import profiled
from shared.runtime.settings import Settings

log = logging.getLogger(__name__)

# Forwarding delays are sub-millisecond when healthy; the buckets resolve 0.1 ms .. 1 s.
FORWARD_BUCKETS_S = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)


def create_app(settings: Settings) -> FastAPI:
    """The media service's ASGI app."""
    redis_url = settings.redis_url or ""
    replica = settings.replica_name or f"{socket.gethostname()}-{os.getpid()}"
    registry = CollectorRegistry()
    inbound_forward = Histogram(
        "media_inbound_forward_seconds",
        "Twilio media frame received -> written to the STT socket (1 frame in 10).",
        buckets=FORWARD_BUCKETS_S,
        registry=registry,
    )
    outbound_forward = Histogram(
        "media_outbound_forward_seconds",
        "TTS audio chunk received -> written to the Twilio socket.",
        buckets=FORWARD_BUCKETS_S,
        registry=registry,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect(redis_url)
        binary = Redis.from_url(redis_url, max_connections=16)  # greeting audio (bytes)
        clients = ProviderClients(settings)
        mux = StreamMux.from_url(
            redis_url,
            cluster=settings.redis_cluster,
            block_ms=settings.stream_block_ms,
            reader_id=replica,
        )
        call_log = CallLog(redis, settings.stream_slot_groups)
        live = LiveCalls(call_log, replica, settings.media_heartbeat_ttl_s)
        app.state.live = live
        heartbeat = asyncio.create_task(live.heartbeat(), name="heartbeat")
        app.state.deps = MediaDeps(
            settings=settings,
            log=call_log,
            mux=mux,
            replica=replica,
            inbound_forward_s=inbound_forward,
            outbound_forward_s=outbound_forward,
            greetings=GreetingCache(binary),
            vad_model=load_vad_model() if settings.vad_enabled else None,
            clients=clients,
        )
        with profiled(settings, "media"):  # around serving: uvicorn re-raises SIGTERM after
            yield
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        await mux.close()
        await redis.aclose()
        await binary.aclose()
        await clients.aclose()

    app = FastAPI(title="FrontDesk media", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "replica": replica}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, object]:
        """Ready for new calls: false while draining (the load balancer stops sending them)."""
        live: LiveCalls = app.state.live
        if live.draining:
            response.status_code = 503
        return {"ready": not live.draining, "live_calls": len(live), "replica": replica}

    async def drain() -> None:
        """SIGTERM: refuse new streams, let live calls finish, hand the rest over."""
        live: LiveCalls = app.state.live
        await live.drain(settings.media_drain_s)

    app.state.drain = drain

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.websocket("/twilio/stream")
    async def twilio_stream(ws: WebSocket) -> None:
        live: LiveCalls = app.state.live
        if live.draining:  # refused at the upgrade (HTTP 403): Twilio's after-stream follows
            await ws.close(code=1013, reason="media replica draining")
            return
        if settings.validate_ws_signature:
            signature = ws.headers.get("x-twilio-signature", "")
            validator = RequestValidator(settings.twilio_auth_token)
            if not signature or not validator.validate(settings.public_media_ws_url, {}, signature):
                log.warning("rejected media stream upgrade: bad X-Twilio-Signature")
                await ws.close(code=1008, reason="invalid Twilio signature")
                return
        await CallSession(ws, app.state.deps, live).run()

    return app
