"""`python -m services.recorder`: persist every call's log to Postgres."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from services.recorder.follower import RecorderDeps, catch_up, record_call
from shared import keys
from shared.runtime import service_settings
from shared.worker_service import consume, open_resources


async def serve() -> None:
    settings = service_settings("recorder")
    async with AsyncExitStack() as stack:
        res = await open_resources(settings, "recorder", stack)
        deps = RecorderDeps(
            log=res.log,
            mux=res.mux(),
            sessions=res.sessions(pool_size=10),
            stream_ttl_s=settings.call_stream_ttl_s,
        )

        async def handle(_: str, fields: dict[str, str]) -> None:
            if fields.get("type") == "call.started":
                await record_call(deps, fields["call_sid"])
            else:
                await catch_up(deps, fields["call_sid"])

        # Calls in progress are not waited for on stop: their work items stay pending and
        # another replica resumes them from the cursor in Postgres.
        await consume(
            res,
            keys.CALLS,
            "recorder",
            handle,
            concurrency=settings.recorder_concurrency,
            drain_s=0,
        )


def main() -> None:
    asyncio.run(serve())


if __name__ == "__main__":
    main()
