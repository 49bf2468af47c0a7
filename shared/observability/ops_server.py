"""The workers' small HTTP port: `/metrics`, `/healthz`, `/readyz` (brain, tools, recorder
have no HTTP app of their own), and the poller of their work stream's consumer-group gauges."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette

from shared.bus.waiting import wait_event
from shared.observability.asgi import MetricsMiddleware
from shared.observability.health import Readiness
from shared.observability.metrics import Metrics
from shared.observability.ops_routes import ops_routes

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the worker owns SIGTERM (graceful drain)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def ops_app(metrics: Metrics, readiness: Readiness, replica: str) -> Starlette:
    """The ops routes as an app of their own."""
    app = Starlette(routes=ops_routes(metrics, readiness, replica))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


@contextlib.asynccontextmanager
async def serving(app: Starlette, host: str, port: int) -> AsyncIterator[None]:
    """Serve `app` on host:port for the duration of the block (port 0: not at all)."""
    if not port:
        yield
        return
    sock = socket.create_server((host, port), reuse_port=False)  # a bind error surfaces here
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="ops-http")
    try:
        yield
    finally:
        server.should_exit = True
        await task
        sock.close()


async def poll_group(
    redis: Redis,
    stream: str,
    group: str,
    metrics: Metrics,
    stop: asyncio.Event,
    interval_s: float,
) -> None:
    """Keep the pending/lag gauges of one consumer group fresh until `stop`."""
    pending = metrics.stream_pending.labels(stream, group)
    lag = metrics.stream_lag.labels(stream, group)
    while not stop.is_set():
        try:
            for info in await redis.xinfo_groups(stream):
                if info.get("name") == group:
                    pending.set(int(info.get("pending") or 0))
                    if info.get("lag") is not None:  # None: Redis cannot tell (after deletes)
                        lag.set(int(info["lag"]))
        except (RedisError, OSError) as exc:
            log.warning("could not read consumer group %s/%s: %s", stream, group, exc)
        await wait_event(stop, interval_s)
