"""The calls this media replica serves: their heartbeat keys, and draining on SIGTERM.

Each live stream holds its call's `live` key (short TTL, refreshed by one loop for the whole
replica in one pipeline), and the replica holds its own alive key (TTL about a second). When the
replica dies its alive key lapses first: after-stream then resumes the call elsewhere at once
(`is_live` checks both), and the recorder's reaper ends a call nobody resumed.

Draining: new streams are refused, live calls get `media_drain_s` to finish, and the rest are
handed over (each session writes `stream.ended` with `handover` and closes its Twilio socket,
so after-stream answers with a fresh `<Connect><Stream>` to another replica).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from shared.bus.call_end import release_live, take_live
from shared.bus.streams import CallLog
from shared.bus.waiting import wait_event
from shared.contract import keys

log = logging.getLogger(__name__)

HANDOVER_WAIT_S = 10.0
"""Longest a drain waits for handed-over sessions to finish their teardown."""


@dataclass
class _Live:
    holder: str
    hand_over: Callable[[], Awaitable[None]]


class LiveCalls:
    """Registry of this replica's live streams."""

    def __init__(
        self, log: CallLog, replica: str, ttl_s: float, replica_ttl_s: float = 1.2
    ) -> None:
        self.log = log
        self.replica = replica
        self.ttl_s = ttl_s
        self.replica_ttl_s = min(replica_ttl_s, ttl_s)
        self.draining = False
        self._calls: dict[str, _Live] = {}
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._calls)

    async def take(
        self, call_sid: str, stream_sid: str, hand_over: Callable[[], Awaitable[None]]
    ) -> bool:
        """Hold the call for a stream; False if the call already ended."""
        holder = f"{self.replica}:{stream_sid}"
        if not await take_live(self.log, call_sid, holder, self.ttl_s):
            return False
        self._calls[call_sid] = _Live(holder, hand_over)
        return True

    async def release(self, call_sid: str) -> None:
        """The stream is over (its end entry is written)."""
        live = self._calls.pop(call_sid, None)
        self._changed.set()
        if live is not None:
            try:
                await release_live(self.log, call_sid, live.holder)
            except RedisError as exc:  # it expires by itself
                log.warning("could not release the live key of %s: %s", call_sid, exc)

    async def heartbeat(self) -> None:
        """Until cancelled: hold the replica's own alive key (a third of its TTL apart, one SET)
        and refresh every live key a third of their TTL apart (one pipeline)."""
        tick_s = self.replica_ttl_s / 3
        calls_every = max(1, round(self.ttl_s / 3 / tick_s))
        alive_key = keys.media_replica_alive(self.replica)
        for tick in itertools.count():
            calls = list(self._calls.items()) if tick % calls_every == 0 else []
            pipe = self.log.redis.pipeline(transaction=False)
            pipe.set(alive_key, "1", px=int(self.replica_ttl_s * 1000))
            for call_sid, live in calls:
                key = keys.live_key(call_sid, self.log.slot_groups)
                pipe.set(key, live.holder, px=int(self.ttl_s * 1000))
            try:
                await pipe.execute()
            except RedisError as exc:  # Redis is down: the calls go on, refreshed next time
                log.warning("heartbeat (%d calls) failed: %s", len(calls), exc)
            await asyncio.sleep(tick_s)

    async def drain(self, finish_s: float) -> None:
        """Refuse new streams, let live calls finish for `finish_s`, then hand the rest over."""
        self.draining = True
        deadline = time.monotonic() + finish_s
        while self._calls and time.monotonic() < deadline:
            self._changed.clear()
            await wait_event(self._changed, max(0.0, deadline - time.monotonic()))
        moving = list(self._calls.items())
        if moving:
            log.info("draining: handing %d live call(s) over", len(moving))
        # at once: each waits for its caller's pause (up to a few seconds), not for the others
        outcomes = await asyncio.gather(
            *(live.hand_over() for _, live in moving), return_exceptions=True
        )
        for (call_sid, _), outcome in zip(moving, outcomes, strict=True):
            if isinstance(outcome, OSError | RuntimeError):
                log.warning("hand-over of %s failed: %s", call_sid, outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
        deadline = time.monotonic() + HANDOVER_WAIT_S
        while self._calls and time.monotonic() < deadline:
            self._changed.clear()
            await wait_event(self._changed, max(0.0, deadline - time.monotonic()))
