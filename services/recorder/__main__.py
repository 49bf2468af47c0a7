"""`python -m services.recorder`: persist every call's log to Postgres, then analyse, price and
announce each finished call (and deliver its webhooks)."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack

from openai import AsyncOpenAI

from services.recorder.dead_letters.work_items import dead_letter_sink
from services.recorder.follower import RecorderDeps, handle_work_item
from services.recorder.postcall import PostCallDeps
from services.recorder.reaper import ReaperBounds, run_reaper
from services.recorder.webhooks.delivery import Deliverer, RetryPolicy
from shared.contract import keys
from shared.db.partitions import run_partition_job
from shared.runtime.guarded_http import guarded_client
from shared.runtime.outbound_guard import UrlPolicy
from shared.runtime.process import run_service, service_settings
from shared.runtime.worker_service import consume, open_resources
from shared.tenancy.pricing import load_price_book


async def serve() -> None:
    settings = service_settings("recorder")
    prices = load_price_book(settings.price_table_json)
    async with AsyncExitStack() as stack:
        res = await open_resources(settings, "recorder", stack)
        sessions = res.sessions(pool_size=10)
        http = await stack.enter_async_context(
            guarded_client(UrlPolicy.from_settings(settings))  # webhook URLs: no SSRF
        )
        llm = AsyncOpenAI(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            timeout=settings.analysis_timeout_s,
            max_retries=1,
        )
        stack.push_async_callback(llm.close)
        deliverer = Deliverer(
            sessions=sessions,
            http=http,
            policy=RetryPolicy.from_settings(settings),
            timeout_s=settings.webhook_timeout_s,
            poll_s=settings.webhook_poll_s,
            metrics=res.metrics,
        )
        postcall = PostCallDeps(
            sessions=sessions,
            settings=settings,
            prices=prices,
            llm=llm,
            deliverer=deliverer,
            metrics=res.metrics,
        )
        deps = RecorderDeps(
            log=res.log,
            mux=res.mux(),
            sessions=sessions,
            stream_ttl_s=settings.call_stream_ttl_s,
            flush_s=settings.recorder_flush_s,
            postcall=postcall,
            max_call_s=settings.recorder_max_call_s,
            late_grace_s=settings.recorder_late_grace_s,
            entry_attempts=settings.recorder_entry_attempts,
            metrics=res.metrics,
        )

        async def handle(_: str, fields: dict[str, str]) -> None:
            await handle_work_item(deps, fields)

        stop_delivering = asyncio.Event()
        delivering = asyncio.create_task(deliverer.run(stop_delivering))
        reaping = asyncio.create_task(  # issue 13: calls nobody ends get call.ended
            run_reaper(
                res.log,
                sessions,
                ReaperBounds(
                    settings.no_stream_timeout_s,
                    settings.media_lost_after_s,
                    settings.reaper_poll_s,
                ),
                res.replica,
                stop_delivering,
            )
        )
        partitioning = asyncio.create_task(  # issue 18: monthly partitions ahead, retention
            run_partition_job(
                sessions,
                every_s=settings.partition_check_s,
                ahead_months=settings.partition_ahead_months,
                retention_months=settings.call_retention_months,
                stop=stop_delivering,
            )
        )
        try:
            # Calls in progress are not waited for on stop: their work items stay pending and
            # another replica resumes them from the cursor in Postgres.
            await consume(
                res,
                keys.CALLS,
                "recorder",
                handle,
                concurrency=settings.recorder_concurrency,
                drain_s=0,
                dead_letter=dead_letter_sink(sessions),
            )
        finally:
            stop_delivering.set()
            delivering.cancel()  # an attempt cut short stays leased, then is retried
            with contextlib.suppress(asyncio.CancelledError):
                await delivering
            await reaping
            await partitioning


def main() -> None:
    run_service(serve())


if __name__ == "__main__":
    main()
