"""Work streams are trimmed below what every consumer group acknowledged, never further: an
unacknowledged (pending) or undelivered entry survives, and under sustained work the stream's
length stays bounded."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from redis.asyncio import Redis

from shared.bus.trimming import trim_acked
from shared.bus.work_queue import WorkQueue, run_workers
from tests.conftest import Infra

LIMIT_S = 60.0


async def _ids(redis: Redis, stream: str) -> list[str]:
    raw: Any = await redis.xrange(stream)
    return [entry_id for entry_id, _ in raw]


async def test_trimming_never_drops_an_unacked_or_undelivered_entry(
    infra: Infra, redis: Redis
) -> None:
    stream = f"test:work:{uuid.uuid4().hex}"
    a = WorkQueue(redis, stream, "a", "a1", claim_idle_ms=60_000)
    b = WorkQueue(redis, stream, "b", "b1", claim_idle_ms=60_000)
    await a.ensure_group()
    await b.ensure_group()
    ids = [str(await redis.xadd(stream, {"n": str(i)})) for i in range(10)]
    assert await trim_acked(redis, stream) == 0  # nothing delivered yet: nothing goes

    for entry_id, _ in await a.read(count=10, block_ms=100):
        if entry_id != ids[3]:
            await a.ack(entry_id)  # group a: everything acked but the 4th
    for entry_id, _ in await b.read(count=6, block_ms=100):
        await b.ack(entry_id)  # group b: the first six acked, the rest not yet delivered

    assert await trim_acked(redis, stream) == 3
    assert await _ids(redis, stream) == ids[3:]
    # the pending entry is still there to be reclaimed and handled
    reclaimer = WorkQueue(redis, stream, "a", "a2", claim_idle_ms=0)
    assert [entry_id for entry_id, _ in await reclaimer.reclaim()] == [ids[3]]
    await reclaimer.ack(ids[3])
    assert await trim_acked(redis, stream) == 3  # now group b (6 delivered) is the floor
    assert await _ids(redis, stream) == ids[6:]
    for entry_id, _ in await b.read(count=10, block_ms=100):
        await b.ack(entry_id)
    assert await trim_acked(redis, stream) == 4
    assert await redis.xlen(stream) == 0
    assert await trim_acked(redis, f"test:work:{uuid.uuid4().hex}") == 0  # no such stream
    await redis.delete(stream)


async def test_a_work_stream_stays_bounded_under_sustained_work(infra: Infra, redis: Redis) -> None:
    """20 rounds of 100 items through a live worker loop, trimmed after each round: the stream
    never holds more than one round, where untrimmed it would hold all 2,000."""
    stream = f"test:work:{uuid.uuid4().hex}"
    done: set[str] = set()
    stop = asyncio.Event()

    async def handler(entry_id: str, _: dict[str, str]) -> None:
        done.add(entry_id)

    queue = WorkQueue(redis, stream, "g", "w1", claim_idle_ms=60_000)
    await queue.ensure_group()
    workers = asyncio.create_task(
        run_workers(queue, handler, concurrency=16, block_ms=100, stop=stop)
    )
    lengths = []
    try:
        for _ in range(20):
            pipe = redis.pipeline(transaction=False)
            for i in range(100):
                pipe.xadd(stream, {"payload": "x" * 200, "i": str(i)})
            await pipe.execute()
            deadline = time.monotonic() + LIMIT_S
            while (await redis.xpending(stream, "g"))["pending"] or (
                (await redis.xinfo_groups(stream))[0]["lag"]
            ):
                assert time.monotonic() < deadline, "round not processed in time"
                await asyncio.sleep(0.02)
            lengths.append(await redis.xlen(stream))
            await trim_acked(redis, stream)
    finally:
        stop.set()
        await workers
    assert len(done) == 2000
    assert max(lengths) <= 100
    assert await redis.xlen(stream) == 0
    await redis.delete(stream)
