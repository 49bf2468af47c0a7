"""Multiplexed live reads of many call streams over a bounded number of Redis connections.

Each *lane* owns one blocking connection and runs ``XREAD BLOCK`` over all its subscribed keys
plus a private wake-up stream. Subscribing XADDs to the wake-up stream, so a new call's first
event never waits for the block timeout. Without cluster mode there is one lane; with it, one
lane per hash-slot group that has subscribers (``shared.contract.keys``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.bus.streams import connect, connect_blocking, decode_entries, stream_id
from shared.bus.waiting import within
from shared.contract import keys
from shared.contract.events import Event, event_type
from shared.runtime.outage import Outage

log = logging.getLogger(__name__)

Entry = tuple[str, Event]


@dataclass(eq=False)
class Subscription:
    """One reader's view of one stream: an async iterator of (entry id, event)."""

    key: str
    after: str
    types: frozenset[str] | None = None
    """Event types delivered (the others are not even parsed); None: all."""
    queue: asyncio.Queue[Entry | None] = field(default_factory=asyncio.Queue)

    def wants(self, event: Event) -> bool:
        """Whether this subscriber asked for events of this type."""
        return self.types is None or event_type(event) in self.types

    def __aiter__(self) -> AsyncIterator[Entry]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Entry]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            yield item

    async def next(self, timeout: float | None = None) -> Entry | None:  # noqa: ASYNC109
        """The next entry, or None when closed or on timeout."""
        try:
            return await within(self.queue.get(), timeout)
        except TimeoutError:
            return None


class _Lane:
    def __init__(self, redis: Redis, blocking: Redis, wake: str, block_ms: int) -> None:
        self.redis = redis
        self.blocking = blocking
        self.wake = wake
        self.wake_last = "0-0"
        self.block_ms = block_ms
        self.last: dict[str, str] = {}
        self.subs: dict[str, list[Subscription]] = {}
        self.lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None
        self.stopping = False
        self.outage = Outage(f"redis (multiplexed reads {wake})", log)

    async def start(self) -> None:
        self.wake_last = str(
            await self.redis.xadd(self.wake, {"w": "1"}, maxlen=16, approximate=True)
        )
        await self.redis.expire(self.wake, 86400)
        self.task = asyncio.create_task(self._run(), name=f"mux:{self.wake}")

    async def poke(self) -> None:
        await self.redis.xadd(self.wake, {"w": "1"}, maxlen=16, approximate=True)

    async def stop(self) -> None:
        """End the read loop by waking it (cancelling a blocked XREAD can hang redis-py)."""
        self.stopping = True
        if self.task is None:
            return
        with contextlib.suppress(RedisError, OSError):
            await self.poke()
        try:
            await within(asyncio.shield(self.task), self.block_ms / 1000 + 1)
        except TimeoutError:
            self.task.cancel()

    async def _run(self) -> None:
        while not self.stopping:
            streams: Any = {self.wake: self.wake_last, **self.last}
            try:
                resp: Any = await self.blocking.xread(streams, block=self.block_ms, count=256)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # blips: back off and retry (never lose position)
                await asyncio.sleep(self.outage.failed(exc))
                continue
            self.outage.recovered()
            async with self.lock:
                for key, raw in resp or []:
                    if not raw:
                        continue
                    if key == self.wake:
                        self.wake_last = raw[-1][0]
                        continue
                    if key not in self.last:
                        continue
                    self.last[key] = raw[-1][0]
                    subs = self.subs.get(key, [])
                    entries = decode_entries(raw, only=_wanted(subs))
                    for sub in subs:
                        floor = stream_id(sub.after)
                        for entry in entries:
                            if stream_id(entry[0]) > floor and sub.wants(entry[1]):
                                sub.queue.put_nowait(entry)


def _wanted(subs: list[Subscription]) -> frozenset[str] | None:
    """The event types any of `subs` wants (None: all types)."""
    wanted: set[str] = set()
    for sub in subs:
        if sub.types is None:
            return None
        wanted |= sub.types
    return frozenset(wanted)


class StreamMux:
    """Subscribes to many streams and feeds each subscriber from a few shared connections.

    `redis` (a pooled client) serves the short commands; `connect_blocking` makes the one
    dedicated connection of each lane.
    """

    def __init__(
        self,
        redis: Redis,
        connect_blocking: Callable[[], Redis],
        *,
        cluster: bool = False,
        block_ms: int = 5000,
        reader_id: str | None = None,
    ) -> None:
        self._redis = redis
        self._connect_blocking = connect_blocking
        self._cluster = cluster
        self._block_ms = block_ms
        self._reader_id = reader_id or uuid.uuid4().hex[:12]
        self._lanes: dict[int | None, _Lane] = {}
        self._lanes_lock = asyncio.Lock()

    @classmethod
    def from_url(
        cls, url: str, *, cluster: bool = False, block_ms: int = 5000, reader_id: str | None = None
    ) -> StreamMux:
        """A mux with its own small pool for short commands."""
        return cls(
            connect(url, max_connections=8, cluster=cluster),
            lambda: connect_blocking(url, block_ms, cluster=cluster),
            cluster=cluster,
            block_ms=block_ms,
            reader_id=reader_id,
        )

    async def _lane(self, key: str) -> _Lane:
        group = keys.group_of_key(key) if self._cluster else None
        async with self._lanes_lock:
            lane = self._lanes.get(group)
            if lane is None:
                lane = _Lane(
                    self._redis,
                    self._connect_blocking(),
                    keys.wake_key(group, self._reader_id),
                    self._block_ms,
                )
                await lane.start()
                self._lanes[group] = lane
            return lane

    async def subscribe(
        self, key: str, after: str = "0-0", types: frozenset[str] | None = None
    ) -> Subscription:
        """Deliver every entry of `key` with an id greater than `after` (and, with `types`, of
        one of those event types), live, in order."""
        lane = await self._lane(key)
        sub = Subscription(key=key, after=after, types=types)
        async with lane.lock:
            if key in lane.last:
                tracked = lane.last[key]
                if stream_id(tracked) > stream_id(after):
                    raw: Any = await lane.redis.xrange(key, f"({after}", tracked)
                    for entry in decode_entries(raw, only=types):
                        sub.queue.put_nowait(entry)
                    sub.after = tracked
            else:
                lane.last[key] = after
            lane.subs.setdefault(key, []).append(sub)
        await lane.poke()
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        """Stop feeding a subscription and end its iterator."""
        lane = await self._lane(sub.key)
        async with lane.lock:
            subs = lane.subs.get(sub.key, [])
            if sub in subs:
                subs.remove(sub)
            if not subs:
                lane.subs.pop(sub.key, None)
                lane.last.pop(sub.key, None)
        sub.queue.put_nowait(None)

    @property
    def connections(self) -> int:
        """Blocking connections in use (one per lane)."""
        return len(self._lanes)

    async def close(self) -> None:
        """Cancel every lane and close its connection."""
        for lane in self._lanes.values():
            await lane.stop()
            for subs in lane.subs.values():
                for sub in subs:
                    sub.queue.put_nowait(None)
            with contextlib.suppress(RedisError, OSError):
                await lane.redis.delete(lane.wake)
            await lane.blocking.aclose()
        self._lanes.clear()
        await self._redis.aclose()
