"""`python -m services.recorder`: persist every call's log to Postgres."""

from __future__ import annotations

import asyncio
import os
import socket

from services.recorder.follower import RecorderDeps, catch_up, record_call
from shared import keys
from shared.bus import CallLog, connect
from shared.db.engine import make_engine, make_sessions
from shared.runtime import service_settings, stop_on_signals
from shared.stream_mux import StreamMux
from shared.work_queue import WorkQueue, run_workers


async def serve() -> None:
    settings = service_settings("recorder")
    url = settings.redis_url or ""
    replica = settings.replica_name or f"recorder-{socket.gethostname()}-{os.getpid()}"
    redis = connect(url)
    mux = StreamMux.from_url(
        url, cluster=settings.redis_cluster, block_ms=settings.stream_block_ms, reader_id=replica
    )
    engine = make_engine(settings.database_url or "", pool_size=10)
    deps = RecorderDeps(
        log=CallLog(redis, settings.stream_slot_groups),
        mux=mux,
        sessions=make_sessions(engine),
        stream_ttl_s=settings.call_stream_ttl_s,
    )

    async def handle(_: str, fields: dict[str, str]) -> None:
        if fields.get("type") == "call.started":
            await record_call(deps, fields["call_sid"])
        else:
            await catch_up(deps, fields["call_sid"])

    queue = WorkQueue(
        connect(url, max_connections=4, socket_timeout=settings.stream_block_ms / 1000 + 10),
        keys.CALLS,
        "recorder",
        replica,
        settings.claim_idle_ms,
    )
    try:
        await run_workers(
            queue,
            handle,
            concurrency=settings.recorder_concurrency,
            block_ms=settings.stream_block_ms,
            stop=stop_on_signals(),
            drain_s=0,
        )
    finally:
        await mux.close()
        await redis.aclose()
        await engine.dispose()


def main() -> None:
    asyncio.run(serve())


if __name__ == "__main__":
    main()
