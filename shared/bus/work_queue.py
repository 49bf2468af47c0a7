"""Consumer groups over a work stream, with reclaim of a dead consumer's pending entries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared.bus.waiting import wait_event

log = logging.getLogger(__name__)

WorkItem = tuple[str, dict[str, str]]
Handler = Callable[[str, dict[str, str]], Awaitable[None]]


class WorkQueue:
    """One consumer's handle on a consumer group of one stream."""

    def __init__(
        self, redis: Redis, stream: str, group: str, consumer: str, claim_idle_ms: int
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms

    async def ensure_group(self) -> None:
        """Create the group (from the start of the stream) if it does not exist."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, count: int, block_ms: int) -> list[WorkItem]:
        """New entries for this consumer (blocks up to `block_ms`)."""
        resp: Any = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        return [(eid, fields) for _, entries in resp or [] for eid, fields in entries if fields]

    async def reclaim(self, count: int = 100) -> list[WorkItem]:
        """Take over entries another consumer left pending longer than `claim_idle_ms`."""
        claimed: list[WorkItem] = []
        cursor = "0-0"
        while True:
            resp = await self.redis.xautoclaim(
                self.stream, self.group, self.consumer, self.claim_idle_ms, cursor, count=count
            )
            cursor, entries = resp[0], resp[1]
            claimed.extend((eid, fields) for eid, fields in entries if fields)
            if cursor == "0-0" or len(claimed) >= count:
                return claimed

    async def touch(self, entry_ids: list[str]) -> None:
        """Reset the idle time of entries we are still working on (so nobody reclaims them)."""
        if entry_ids:
            ids: Any = list(entry_ids)
            await self.redis.xclaim(self.stream, self.group, self.consumer, 0, ids, justid=True)

    async def ack(self, entry_id: str) -> None:
        """Mark an entry done."""
        await self.redis.xack(self.stream, self.group, entry_id)


async def run_workers(
    queue: WorkQueue,
    handler: Handler,
    *,
    concurrency: int,
    block_ms: int,
    stop: asyncio.Event,
    drain_s: float = 30.0,
) -> None:
    """Feed entries (new and reclaimed) to `handler` with bounded concurrency; ack on success.

    A handler that raises leaves its entry pending, so another replica reclaims and retries it.
    On `stop`, in-flight handlers get `drain_s` to finish; the rest are cancelled unacked (and
    so reclaimed elsewhere).
    """
    await queue.ensure_group()
    slots = asyncio.Semaphore(concurrency)
    in_flight: dict[str, asyncio.Task[None]] = {}

    async def handle(entry_id: str, fields: dict[str, str]) -> None:
        try:
            await handler(entry_id, fields)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("work item failed; left pending for retry", extra={"entry": entry_id})
        else:
            await queue.ack(entry_id)
        finally:
            in_flight.pop(entry_id, None)
            slots.release()

    async def start(items: list[tuple[str, dict[str, str]]]) -> None:
        for entry_id, fields in items:
            if entry_id in in_flight:
                continue
            await slots.acquire()
            in_flight[entry_id] = asyncio.create_task(handle(entry_id, fields))

    async def keep_claimed() -> None:
        interval = max(queue.claim_idle_ms / 3000, 0.05)
        while not stop.is_set():
            await queue.touch(list(in_flight))
            await start(await queue.reclaim())
            await wait_event(stop, interval)

    housekeeping = asyncio.create_task(keep_claimed())
    try:
        while not stop.is_set():
            await start(await queue.read(count=max(1, concurrency), block_ms=block_ms))
    finally:
        housekeeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await housekeeping
        if in_flight:
            tasks = list(in_flight.values())
            _, late = await asyncio.wait(tasks, timeout=drain_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
