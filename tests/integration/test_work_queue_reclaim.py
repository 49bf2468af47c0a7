"""Consumer groups: a killed consumer's pending work is reclaimed by a live one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

from redis.asyncio import Redis

from shared.bus.streams import connect
from shared.bus.work_queue import WorkQueue, run_workers
from sim.twilio_webhook import new_sid
from tests.conftest import Infra

DOOMED = textwrap.dedent("""
    import asyncio, sys
    from shared.bus.streams import connect
    from shared.bus.work_queue import WorkQueue

    async def main() -> None:
        q = WorkQueue(connect(sys.argv[1]), sys.argv[2], "g", "doomed", claim_idle_ms=60_000)
        await q.ensure_group()
        items = await q.read(count=1, block_ms=10_000)
        print("took", items[0][0], flush=True)
        await asyncio.Event().wait()   # "working" forever, never acks

    asyncio.run(main())
""")


async def test_killed_consumer_entries_are_reclaimed(infra: Infra, redis: Redis) -> None:
    stream = f"test:work:{new_sid('X')}"
    live = WorkQueue(redis, stream, "g", "live", claim_idle_ms=60_000)
    await live.ensure_group()
    entry = await redis.xadd(stream, {"job": "turn-1"})
    proc = subprocess.Popen(
        [sys.executable, "-c", DOOMED, infra.redis_url, stream],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line.split() == ["took", entry]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    pending = await redis.xpending(stream, "g")
    assert pending["pending"] == 1 and pending["consumers"][0]["name"] == "doomed"
    # Not stale yet under a 60 s idle threshold: nobody may steal it.
    assert await live.reclaim() == []
    # Once it is older than the threshold, a live consumer takes it over.
    eager = WorkQueue(redis, stream, "g", "live", claim_idle_ms=0)
    assert await eager.reclaim() == [(entry, {"job": "turn-1"})]
    await eager.ack(entry)
    assert (await redis.xpending(stream, "g"))["pending"] == 0


async def test_failed_handler_leaves_work_for_another_replica(infra: Infra, redis: Redis) -> None:
    stream = f"test:work:{new_sid('X')}"
    await redis.xadd(stream, {"job": "a"})
    seen: list[tuple[str, str]] = []
    failed, done = asyncio.Event(), asyncio.Event()

    async def flaky(_: str, fields: dict[str, str]) -> None:
        seen.append(("replica-1", fields["job"]))
        failed.set()
        raise RuntimeError("replica-1 fails this job")

    async def good(_: str, fields: dict[str, str]) -> None:
        seen.append(("replica-2", fields["job"]))
        done.set()

    stop1, stop2 = asyncio.Event(), asyncio.Event()
    q1 = WorkQueue(connect(infra.redis_url), stream, "g", "replica-1", claim_idle_ms=200)
    w1 = asyncio.create_task(run_workers(q1, flaky, concurrency=2, block_ms=100, stop=stop1))
    await asyncio.wait_for(failed.wait(), 30)
    stop1.set()
    await w1
    q2 = WorkQueue(connect(infra.redis_url), stream, "g", "replica-2", claim_idle_ms=200)
    w2 = asyncio.create_task(run_workers(q2, good, concurrency=2, block_ms=100, stop=stop2))
    await asyncio.wait_for(done.wait(), 30)
    stop2.set()
    await w2
    assert seen == [("replica-1", "a"), ("replica-2", "a")]
    assert (await redis.xpending(stream, "g"))["pending"] == 0
