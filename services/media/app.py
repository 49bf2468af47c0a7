"""Media service: terminates Twilio Media Streams WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket
from twilio.request_validator import RequestValidator

from services.media.call_session import CallSession, MediaDeps
from services.media.continuity.phrase_cache import BestEffortPhrases
from services.media.live_calls import LiveCalls
from services.media.provider_clients import ProviderClients
from shared.bus.mux import StreamMux
from shared.bus.streams import CallLog, connect
from shared.observability.asgi import MetricsMiddleware
from shared.observability.health import Readiness
from shared.observability.metrics import Metrics
from shared.observability.ops_routes import mount_ops
from shared.recordings.store import RecordingStore
from shared.runtime.process import profiled
from shared.runtime.settings import Settings
from shared.speech.vad import load_vad_model

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """The media service's ASGI app."""
    redis_url = settings.redis_url or ""
    replica = settings.replica_name or f"{socket.gethostname()}-{os.getpid()}"
    metrics = Metrics("media", process=True)
    # Media uses no Postgres: its readiness is Redis only (a database outage must not take
    # every media replica out of the load balancer; calls would carry on without Postgres).
    # Full at MEDIA_MAX_CALLS live calls: not ready, so the balancer places new calls elsewhere.
    readiness = Readiness(None, None, metrics, capacity=settings.media_max_calls)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect(redis_url, cluster=settings.redis_cluster)
        readiness.redis = redis
        # greeting and phrase audio (bytes); like every client, it replaces a connection that
        # a Redis restart closed instead of failing the reply that meets it
        binary = connect(
            redis_url, max_connections=16, cluster=settings.redis_cluster, decode=False
        )
        clients = ProviderClients(settings)
        mux = StreamMux.from_url(
            redis_url,
            cluster=settings.redis_cluster,
            block_ms=settings.stream_block_ms,
            reader_id=replica,
        )
        call_log = CallLog(redis, settings.stream_slot_groups)
        live = LiveCalls(
            call_log, replica, settings.media_heartbeat_ttl_s, settings.media_replica_ttl_s
        )
        app.state.live = live
        readiness.load = live.__len__
        heartbeat = asyncio.create_task(live.heartbeat(), name="heartbeat")
        app.state.deps = MediaDeps(
            settings=settings,
            log=call_log,
            mux=mux,
            replica=replica,
            inbound_forward_s=metrics.inbound_forward,
            outbound_forward_s=metrics.outbound_forward,
            greetings=BestEffortPhrases(binary),
            vad_model=load_vad_model() if settings.vad_enabled else None,
            clients=clients,
            metrics=metrics,
            recordings=(
                RecordingStore.from_settings(settings) if settings.recordings_enabled else None
            ),
        )
        with profiled(settings, "media"):  # around serving: uvicorn re-raises SIGTERM after
            yield
        readiness.drain()
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        await mux.close()
        await redis.aclose()
        await binary.aclose()
        await clients.aclose()

    app = FastAPI(title="FrontDesk media", lifespan=lifespan)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    mount_ops(app, metrics, readiness, replica)  # /healthz, /readyz (503 while draining), /metrics

    async def drain() -> None:
        """SIGTERM: not ready, refuse new streams, let live calls finish, hand the rest over."""
        readiness.drain()
        live: LiveCalls = app.state.live
        await live.drain(settings.media_drain_s)

    app.state.drain = drain

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
