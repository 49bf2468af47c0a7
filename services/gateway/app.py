"""Gateway: Twilio webhooks, and the tenant-scoped HTTP API. One router per concern."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from services.gateway import admin, calls_api, outbound, twilio_routes, twilio_status
from services.gateway.admin.schemas import error_doc
from services.gateway.edge.limits import EdgeLimitMiddleware, EdgeLimits
from shared.bus.streams import CallLog, connect
from shared.db.engine import make_engine, make_sessions
from shared.observability.asgi import MetricsMiddleware
from shared.observability.health import Readiness
from shared.observability.metrics import Metrics
from shared.observability.ops_routes import mount_ops
from shared.runtime.settings import Settings

ROUTERS: list[APIRouter] = [
    twilio_routes.router,
    *admin.ROUTERS,
    twilio_status.router,
    *calls_api.ROUTERS,
    *outbound.ROUTERS,
]
"""Every router the gateway serves (each module owns its routes)."""


EDGE_ERRORS = error_doc(400, "Malformed request (body or header).") | error_doc(
    413, "Request body over the limit."
)
"""Answers any route can give before it runs (edge middleware, body parsing)."""


def create_app(settings: Settings) -> FastAPI:
    """The gateway's ASGI app."""
    assert settings.redis_url and settings.database_url, "resolve URLs before creating the app"
    metrics = Metrics("gateway", process=True)
    readiness = Readiness(None, None, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = connect(settings.redis_url or "", cluster=settings.redis_cluster)
        app.state.log = CallLog(app.state.redis, settings.stream_slot_groups)
        app.state.engine = make_engine(settings.database_url or "")
        app.state.sessions = make_sessions(app.state.engine)
        readiness.redis, readiness.engine = app.state.redis, app.state.engine
        yield
        readiness.drain()
        await app.state.redis.aclose()
        await app.state.engine.dispose()

    app = FastAPI(
        title="FrontDesk",
        version="0.1.0",
        lifespan=lifespan,
        responses=EDGE_ERRORS,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    mount_ops(app, metrics, readiness, settings.replica_name or "gateway")

    for router in ROUTERS:
        app.include_router(router)
    limits = EdgeLimits(settings.twilio_body_max_bytes, settings.api_body_max_bytes)
    app.add_middleware(EdgeLimitMiddleware, limits=limits)
    return app
