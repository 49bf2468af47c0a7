"""The shape every worker service shares: resources, one consumer group, graceful stop."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.bus.mux import StreamMux
from shared.bus.streams import CallLog, connect
from shared.bus.trimming import keep_trimmed
from shared.bus.work_queue import DeadLetterSink, Handler, WorkQueue, run_workers
from shared.db.engine import make_engine, make_sessions
from shared.observability.health import Readiness
from shared.observability.metrics import Metrics
from shared.observability.ops_server import ops_app, poll_group, serving
from shared.runtime.logs import call_sid_var
from shared.runtime.process import stop_on_signals
from shared.runtime.settings import Settings


@dataclass
class WorkerResources:
    """Connections a worker replica opens once and closes on exit."""

    settings: Settings
    replica: str
    redis: Redis
    log: CallLog
    stack: AsyncExitStack
    metrics: Metrics = field(default_factory=Metrics)
    engine: AsyncEngine | None = None  # the first Postgres engine opened (readiness checks it)

    def mux(self) -> StreamMux:
        """A multiplexed call-log reader, closed with the worker."""
        url = self.settings.redis_url or ""
        mux = StreamMux.from_url(
            url,
            cluster=self.settings.redis_cluster,
            block_ms=self.settings.stream_block_ms,
            reader_id=self.replica,
        )
        self.stack.push_async_callback(mux.close)
        return mux

    def sessions(self, pool_size: int = 5) -> async_sessionmaker[AsyncSession]:
        """A Postgres session factory, disposed with the worker."""
        engine: AsyncEngine = make_engine(self.settings.database_url or "", pool_size=pool_size)
        self.stack.push_async_callback(engine.dispose)
        self.engine = self.engine or engine
        return make_sessions(engine)


async def open_resources(
    settings: Settings, service: str, stack: AsyncExitStack
) -> WorkerResources:
    """Redis client and call log for a worker replica named after host and pid by default."""
    replica = settings.replica_name or f"{service}-{socket.gethostname()}-{os.getpid()}"
    redis = connect(settings.redis_url or "", cluster=settings.redis_cluster)
    stack.push_async_callback(redis.aclose)
    return WorkerResources(
        settings=settings,
        replica=replica,
        redis=redis,
        log=CallLog(redis, settings.stream_slot_groups),
        stack=stack,
        metrics=Metrics(service, process=True),
    )


async def consume(
    res: WorkerResources,
    stream: str,
    group: str,
    handler: Handler,
    *,
    concurrency: int,
    drain_s: float = 30.0,
    claim_idle_ms: int | None = None,
    dead_letter: DeadLetterSink | None = None,
) -> None:
    """Run `handler` over the consumer group until SIGTERM/SIGINT, serving metrics and health
    on `METRICS_PORT` meanwhile (not ready from the signal on) and keeping the stream trimmed
    below what its groups acknowledged. A dead replica's entries are taken over once idle
    `claim_idle_ms` (default: the CLAIM_IDLE_MS setting); with `dead_letter`, an item that fails
    `work_max_attempts` times (or is poison) goes there instead of being retried forever."""
    settings = res.settings
    blocking = connect(
        settings.redis_url or "",
        max_connections=4,
        socket_timeout=settings.stream_block_ms / 1000 + 10,
        cluster=settings.redis_cluster,
    )
    res.stack.push_async_callback(blocking.aclose)
    idle_ms = settings.claim_idle_ms if claim_idle_ms is None else claim_idle_ms
    queue = WorkQueue(blocking, stream, group, res.replica, idle_ms)
    stop = stop_on_signals()
    readiness = Readiness(res.redis, res.engine, res.metrics)
    app = ops_app(res.metrics, readiness, res.replica)
    async with serving(app, settings.metrics_host, settings.metrics_port):
        watchers = [
            asyncio.create_task(_drain_on(stop, readiness)),
            asyncio.create_task(
                poll_group(
                    res.redis, stream, group, res.metrics, stop, settings.stream_metrics_interval_s
                )
            ),
            asyncio.create_task(
                keep_trimmed(res.redis, [stream], settings.work_stream_trim_s, stop)
            ),
        ]
        try:
            await run_workers(
                queue,
                observed(handler, stream, res.metrics),
                concurrency=concurrency,
                block_ms=settings.stream_block_ms,
                stop=stop,
                drain_s=drain_s,
                max_attempts=settings.work_max_attempts,
                dead_letter=dead_letter,
            )
        finally:
            stop.set()
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)


async def _drain_on(stop: asyncio.Event, readiness: Readiness) -> None:
    await stop.wait()
    readiness.drain()


def observed(handler: Handler, stream: str, metrics: Metrics) -> Handler:
    """`handler`, counted and timed per work item, with the item's call sid in every log line."""
    in_progress = metrics.work_in_progress.labels(stream)
    duration = metrics.work_duration.labels(stream)
    ok, error = metrics.work_items.labels(stream, "ok"), metrics.work_items.labels(stream, "error")

    async def handle(entry_id: str, fields: dict[str, str]) -> None:
        call_sid_var.set(fields.get("call_sid"))  # each item runs in its own task
        began = time.perf_counter()
        in_progress.inc()
        try:
            await handler(entry_id, fields)
        except Exception:
            error.inc()
            raise
        else:
            ok.inc()
        finally:
            in_progress.dec()
            duration.observe(time.perf_counter() - began)

    return handle
