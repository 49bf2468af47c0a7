"""Appends to one call's log that survive a Redis blip: held in order, written when it is back.

While an append fails with a connection error, that event and every later one are queued (up
to `limit`; beyond it the newest are dropped and counted, so memory stays bounded), and one
background task writes the queue in order, with backoff, once Redis answers. Callers never
wait for the outage: a queued append returns "" instead of an entry id. Errors that are not
about the connection still raise. An append may carry a work item to publish with its event
(`CallLog.append_then_publish`: a caller turn and its `fd:turns` item): queued, the two are
written together, in the event's place in the order.
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

Publish = tuple[str, dict[str, str]]
"""A work item published right after its event: (stream, fields)."""


class OrderedAppender:
    """Writes one call's events to its log in order, queueing them while Redis is away."""

    def __init__(self, call_log: CallLog, limit: int, name: str = "call log") -> None:
        self.log = call_log
        self.limit = limit
        self.pending: deque[tuple[ev.Event, Publish | None]] = deque()
        self.dropped = 0
        self.outage = Outage(f"redis ({name} appends)", log)
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, event: ev.Event, publish: Publish | None = None) -> str:
        """XADD `event` now (then `publish`'s work item, if any), or queue both behind earlier
        queued ones; the event's entry id or QUEUED."""
        if not self.pending:
            try:
                return await self._write(event, publish)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.outage.failed(exc)
        self._queue(event, publish)
        return QUEUED

    async def _write(self, event: ev.Event, publish: Publish | None) -> str:
        if publish is None:
            return await self.log.append(event)
        stream, fields = publish
        return await self.log.append_then_publish(event, stream, fields)

    def _queue(self, event: ev.Event, publish: Publish | None) -> None:
        if len(self.pending) >= self.limit:
            if self.dropped == 0:
                log.error("call-log buffer full (%d); dropping new events", self.limit)
            self.dropped += 1
            return
        self.pending.append((event, publish))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="call-log-flush")

    async def _flush(self) -> None:
        while self.pending:
            try:
                await self._write(*self.pending[0])
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
