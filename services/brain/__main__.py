"""`python -m services.brain`: consume turn requests and answer them with the LLM."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from services.brain.llm import keep_warm, make_client
from services.brain.preemptive import Turn
from services.brain.turn_runner import BrainDeps
from shared.contract import keys
from shared.runtime.process import run_service, service_settings
from shared.runtime.worker_service import consume, open_resources


async def serve() -> None:
    settings = service_settings("brain")
    async with AsyncExitStack() as stack:
        res = await open_resources(settings, "brain", stack)
        deps = BrainDeps(
            settings=settings,
            log=res.log,
            mux=res.mux(),
            llm=make_client(settings),
            metrics=res.metrics,
        )

        warm = asyncio.create_task(keep_warm(deps.llm, settings.llm_warm_interval_s))
        stack.callback(warm.cancel)

        async def handle(_: str, fields: dict[str, str]) -> None:
            await Turn(deps, fields["call_sid"], int(fields["turn_id"])).run()

        await consume(
            res,
            keys.TURNS,
            "brain",
            handle,
            concurrency=settings.brain_concurrency,
            claim_idle_ms=settings.work_claim_idle_ms,  # a dead brain's turn moves within ~2 s
        )


def main() -> None:
    run_service(serve())


if __name__ == "__main__":
    main()
