"""`python -m services.brain`: consume turn requests and answer them with the LLM."""

from __future__ import annotations

import asyncio
import os
import socket

from services.brain.llm import make_client
from services.brain.turn_runner import BrainDeps, TurnRunner
from shared import keys
from shared.bus import CallLog, connect
from shared.runtime import service_settings, stop_on_signals
from shared.stream_mux import StreamMux
from shared.work_queue import WorkQueue, run_workers


async def serve() -> None:
    settings = service_settings("brain")
    url = settings.redis_url or ""
    replica = settings.replica_name or f"brain-{socket.gethostname()}-{os.getpid()}"
    redis = connect(url)
    mux = StreamMux.from_url(
        url, cluster=settings.redis_cluster, block_ms=settings.stream_block_ms, reader_id=replica
    )
    deps = BrainDeps(
        settings=settings,
        log=CallLog(redis, settings.stream_slot_groups),
        mux=mux,
        llm=make_client(settings),
    )

    async def handle(_: str, fields: dict[str, str]) -> None:
        await TurnRunner(deps, fields["call_sid"], int(fields["turn_id"])).run()

    queue = WorkQueue(
        connect(url, max_connections=4, socket_timeout=settings.stream_block_ms / 1000 + 10),
        keys.TURNS,
        "brain",
        replica,
        settings.claim_idle_ms,
    )
    try:
        await run_workers(
            queue,
            handle,
            concurrency=settings.brain_concurrency,
            block_ms=settings.stream_block_ms,
            stop=stop_on_signals(),
        )
    finally:
        await mux.close()
        await redis.aclose()


def main() -> None:
    asyncio.run(serve())


if __name__ == "__main__":
    main()
