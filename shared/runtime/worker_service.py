"""The shape every worker service shares: resources, one consumer group, graceful stop."""

from __future__ import annotations

import asyncio
import os
import socket
from contextlib import AsyncExitStack
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.bus.mux import StreamMux
from shared.bus.streams import CallLog, connect
from shared.bus.trimming import keep_trimmed
from shared.bus.work_queue import DeadLetterSink, Handler, WorkQueue, run_workers
from shared.db.engine import make_engine, make_sessions
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
        return make_sessions(engine)


async def open_resources(
    settings: Settings, service: str, stack: AsyncExitStack
) -> WorkerResources:
    """Redis client and call log for a worker replica named after host and pid by default."""
    replica = settings.replica_name or f"{service}-{socket.gethostname()}-{os.getpid()}"
    redis = connect(settings.redis_url or "")
    stack.push_async_callback(redis.aclose)
    return WorkerResources(
        settings=settings,
        replica=replica,
        redis=redis,
        log=CallLog(redis, settings.stream_slot_groups),
        stack=stack,
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
    """Run `handler` over the consumer group until SIGTERM/SIGINT, keeping the stream trimmed
    below what its groups acknowledged; a dead replica's entries are taken over once idle
    `claim_idle_ms` (default: the CLAIM_IDLE_MS setting); with `dead_letter`, an item that fails
    `work_max_attempts` times (or is poison) goes there instead of being retried forever."""
    settings = res.settings
    blocking = connect(
        settings.redis_url or "",
        max_connections=4,
        socket_timeout=settings.stream_block_ms / 1000 + 10,
    )
    res.stack.push_async_callback(blocking.aclose)
    idle_ms = settings.claim_idle_ms if claim_idle_ms is None else claim_idle_ms
    queue = WorkQueue(blocking, stream, group, res.replica, idle_ms)
    stop = stop_on_signals()
    trimming = asyncio.create_task(
        keep_trimmed(res.redis, [stream], settings.work_stream_trim_s, stop)
    )
    try:
        await run_workers(
            queue,
            handler,
            concurrency=concurrency,
            block_ms=settings.stream_block_ms,
            stop=stop,
            drain_s=drain_s,
            max_attempts=settings.work_max_attempts,
            dead_letter=dead_letter,
        )
    finally:
        stop.set()
        await trimming
