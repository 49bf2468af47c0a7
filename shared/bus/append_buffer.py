"""Appends to one call's log that survive a Redis blip: held in order, written when it is back.

While an append fails with a connection error, that event and every later one are queued (up
to `limit`; beyond it the newest are dropped and counted, so memory stays bounded), and one
background task writes the queue in order, with backoff, once Redis answers. Callers never
wait for the outage: a queued append returns "" instead of an entry id. Errors that are not
about the connection still raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from shared.bus.streams import CallLog
from shared.contract import events as ev
from shared.runtime.outage import Outage, is_transient

log = logging.getLogger(__name__)

QUEUED = ""
"""What `append` returns for an event it queued (its entry id is not known yet)."""


class OrderedAppender:
    """Writes one call's events to its log in order, queueing them while Redis is away."""

    def __init__(self, call_log: CallLog, limit: int, name: str = "call log") -> None:
        self.log = call_log
        self.limit = limit
        self.pending: deque[ev.Event] = deque()
        self.dropped = 0
        self.outage = Outage(f"redis ({name} appends)", log)
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, event: ev.Event) -> str:
        """XADD `event` now, or queue it behind earlier queued ones; its entry id or QUEUED."""
        if not self.pending:
            try:
                return await self.log.append(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.outage.failed(exc)
        self._queue(event)
        return QUEUED

    def _queue(self, event: ev.Event) -> None:
        if len(self.pending) >= self.limit:
            if self.dropped == 0:
                log.error("call-log buffer full (%d); dropping new events", self.limit)
            self.dropped += 1
            return
        self.pending.append(event)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="call-log-flush")

    async def _flush(self) -> None:
        while self.pending:
            try:
                await self.log.append(self.pending[0])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    log.exception("a queued call-log event cannot be written; dropped")
                    self.pending.popleft()
                    continue
                await asyncio.sleep(self.outage.failed(exc))
                continue
            self.pending.popleft()
        self.outage.recovered()

    async def drain(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for the queue to be written; True if it was."""
        flusher = self._flusher
        if flusher is None or flusher.done():
            return not self.pending
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(flusher)
        return not self.pending
