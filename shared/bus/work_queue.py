"""Consumer groups over a work stream, with reclaim of a dead consumer's pending entries."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared.bus.waiting import wait_event
from shared.runtime.outage import Outage, Stopped, is_transient, sleep_unless, until_available

log = logging.getLogger(__name__)

WorkItem = tuple[str, dict[str, str]]
Handler = Callable[[str, dict[str, str]], Awaitable[None]]
DeadLetterSink = Callable[["DeadLetter"], Awaitable[None]]
"""Stores a work item that can never succeed (e.g. in the `dead_letters` table)."""


class PoisonItem(Exception):
    """Raised by a handler for a work item that can never succeed (malformed fields): it goes
    to the dead letters at once instead of being retried."""


@dataclass(frozen=True)
class DeadLetter:
    """A work item given up on, with why."""

    stream: str
    entry_id: str
    fields: dict[str, str]
    error: str
    attempts: int


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

    async def deliveries(self, entry_id: str) -> int:
        """How many times the entry was delivered (XREADGROUP, XAUTOCLAIM; 0: not pending)."""
        rows: Any = await self.redis.xpending_range(
            self.stream, self.group, min=entry_id, max=entry_id, count=1
        )
        return int(rows[0]["times_delivered"]) if rows else 0


async def run_workers(
    queue: WorkQueue,
    handler: Handler,
    *,
    concurrency: int,
    block_ms: int,
    stop: asyncio.Event,
    drain_s: float = 30.0,
    max_attempts: int = 0,
    dead_letter: DeadLetterSink | None = None,
) -> None:
    """Feed entries (new and reclaimed) to `handler` with bounded concurrency; ack on success.

    Redis and Postgres blips never end the loop: reads, reclaims and acks wait them out with
    backoff (logged once per outage), and a handler that fails with a connection error is run
    again here once the server answers. A handler that raises anything else leaves its entry
    pending, so another replica reclaims and retries it, until it was delivered `max_attempts`
    times (0: no limit); then, like a `PoisonItem` at once, it goes to `dead_letter` and is
    acked. On `stop`, in-flight handlers get `drain_s` to finish; the rest are cancelled
    unacked (and so reclaimed elsewhere).
    """
    redis_outage = Outage(f"redis ({queue.stream}/{queue.group})", log)
    await until_available(queue.ensure_group, redis_outage, stop)
    slots = asyncio.Semaphore(concurrency)
    in_flight: dict[str, asyncio.Task[None]] = {}
    handler_outage = Outage(f"{queue.group} dependencies", log)

    async def give_up(entry_id: str, fields: dict[str, str], exc: Exception) -> bool:
        """Dead-letter the entry if it is poison or out of attempts; True if it was."""
        if dead_letter is None:
            return False
        attempts = await queue.deliveries(entry_id)
        if not isinstance(exc, PoisonItem) and (max_attempts <= 0 or attempts < max_attempts):
            return False
        error = f"{type(exc).__name__}: {exc}"[:2000]
        await dead_letter(DeadLetter(queue.stream, entry_id, dict(fields), error, attempts))
        log.error("work item dead-lettered", extra={"entry": entry_id, "error": error})
        return True

    async def handle(entry_id: str, fields: dict[str, str]) -> None:
        try:
            try:
                await until_available(lambda: handler(entry_id, fields), handler_outage, stop)
            except asyncio.CancelledError:
                raise
            except Stopped:
                return  # stopping mid-outage: left pending for another replica
            except Exception as exc:
                dead = functools.partial(give_up, entry_id, fields, exc)
                if not await until_available(dead, redis_outage, stop):
                    log.exception(
                        "work item failed; left pending for retry", extra={"entry": entry_id}
                    )
                    return
            await until_available(lambda: queue.ack(entry_id), redis_outage, stop)
        except Stopped:
            pass  # acked by nobody: reclaimed and retried (handlers are idempotent)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("work item bookkeeping failed", extra={"entry": entry_id})
        finally:
            in_flight.pop(entry_id, None)
            slots.release()

    async def start(items: list[tuple[str, dict[str, str]]]) -> None:
        for entry_id, fields in items:
            if entry_id in in_flight:
                continue
            await slots.acquire()
            in_flight[entry_id] = asyncio.create_task(handle(entry_id, fields))

    async def guarded(step: Callable[[], Awaitable[None]], outage: Outage) -> None:
        """One step of a loop; a connection error waits with backoff instead of escaping."""
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):  # Redis came back without our data (no AOF)
                raise
            outage.failed(exc)
            await sleep_unless(stop, 0.1)
            await until_available(queue.ensure_group, outage, stop)
        except Exception as exc:
            if not is_transient(exc):
                raise
            await sleep_unless(stop, outage.failed(exc))
        else:
            outage.recovered()

    async def keep_claimed() -> None:
        interval = max(queue.claim_idle_ms / 3000, 0.05)
        outage = Outage(f"redis ({queue.stream}/{queue.group} reclaim)", log)

        async def step() -> None:
            await queue.touch(list(in_flight))
            await start(await queue.reclaim())

        while not stop.is_set():
            await guarded(step, outage)
            await wait_event(stop, interval)

    async def read_new() -> None:
        await start(await queue.read(count=max(1, concurrency), block_ms=block_ms))

    housekeeping = asyncio.create_task(keep_claimed())
    try:
        while not stop.is_set():
            await guarded(read_new, redis_outage)
    except Stopped:
        pass
    finally:
        housekeeping.cancel()
        with contextlib.suppress(asyncio.CancelledError, Stopped):
            await housekeeping
        if in_flight:
            tasks = list(in_flight.values())
            _, late = await asyncio.wait(tasks, timeout=drain_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
