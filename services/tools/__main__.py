"""`python -m services.tools`: consume tool requests and execute them."""

from __future__ import annotations

from contextlib import AsyncExitStack

from services.tools.executor import ToolsDeps, execute
from shared.contract import keys
from shared.runtime.process import run_service, service_settings
from shared.runtime.worker_service import consume, open_resources


async def serve() -> None:
    settings = service_settings("tools")
    async with AsyncExitStack() as stack:
        res = await open_resources(settings, "tools", stack)
        deps = ToolsDeps(log=res.log, sessions=res.sessions(), metrics=res.metrics)

        async def handle(_: str, fields: dict[str, str]) -> None:
            await execute(deps, fields["call_sid"], fields["entry_id"])

        await consume(
            res,
            keys.TOOLS,
            "tools",
            handle,
            concurrency=settings.tools_concurrency,
            claim_idle_ms=settings.work_claim_idle_ms,  # a dead replica's call moves within ~2 s
        )


def main() -> None:
    run_service(serve())


if __name__ == "__main__":
    main()
