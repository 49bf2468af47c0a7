"""`python -m services.tools`: consume tool requests and execute them."""

from __future__ import annotations

import asyncio
import os
import socket

from services.tools.executor import ToolsDeps, execute
from shared import keys
from shared.bus import CallLog, connect
from shared.db.engine import make_engine, make_sessions
from shared.runtime import service_settings, stop_on_signals
from shared.work_queue import WorkQueue, run_workers


async def serve() -> None:
    settings = service_settings("tools")
    url = settings.redis_url or ""
    replica = settings.replica_name or f"tools-{socket.gethostname()}-{os.getpid()}"
    redis = connect(url)
    engine = make_engine(settings.database_url or "")
    deps = ToolsDeps(
        log=CallLog(redis, settings.stream_slot_groups), sessions=make_sessions(engine)
    )

    async def handle(_: str, fields: dict[str, str]) -> None:
        await execute(deps, fields["call_sid"], fields["entry_id"])

    queue = WorkQueue(
        connect(url, max_connections=4, socket_timeout=settings.stream_block_ms / 1000 + 10),
        keys.TOOLS,
        "tools",
        replica,
        settings.claim_idle_ms,
    )
    try:
        await run_workers(
            queue,
            handle,
            concurrency=settings.tools_concurrency,
            block_ms=settings.stream_block_ms,
            stop=stop_on_signals(),
        )
    finally:
        await redis.aclose()
        await engine.dispose()


def main() -> None:
    asyncio.run(serve())


if __name__ == "__main__":
    main()
