"""Follow one call's log from where Postgres says we stopped, until call.ended is stored.

Group commit: once an entry arrives, entries are collected for up to `flush_s` (or MAX_BATCH of
them, or until call.ended) and stored in one transaction. Nothing waits on the recorder during a
call, so the delay only matters for call.ended, which is stored at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.recorder.memory import LogMemory
from services.recorder.persist import persist
from services.recorder.postcall import PostCallDeps, run_postcall
from shared.bus.mux import Entry, StreamMux, Subscription
from shared.bus.streams import CallLog
from shared.bus.waiting import within
from shared.contract import events as ev
from shared.db.models import Call
from shared.observability.metrics import Metrics
from shared.observability.recorder_batches import batch_observed, follow_ended, follow_started
from shared.runtime.settings import Settings

log = logging.getLogger(__name__)

MAX_BATCH = 256
DEFAULT_FLUSH_S: float = Settings.model_fields["recorder_flush_s"].default


@dataclass
class RecorderDeps:
    """What every followed call on this replica shares."""

    log: CallLog
    mux: StreamMux
    sessions: async_sessionmaker[AsyncSession]
    stream_ttl_s: int
    postcall: PostCallDeps
    flush_s: float = DEFAULT_FLUSH_S
    metrics: Metrics = field(default_factory=Metrics)  # this replica's Prometheus metrics


async def collect(sub: Subscription, flush_s: float) -> tuple[list[Entry], bool]:
    """The next batch: the first entry, then whatever arrives within `flush_s` of it, up to
    MAX_BATCH entries; call.ended ends it at once (with what is already queued behind it).
    Also returns whether the subscription closed (the batch may still hold entries)."""
    first = await sub.queue.get()
    if first is None:
        return [], True
    batch = [first]
    ended = isinstance(first[1], ev.CallEnded)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + flush_s
    while len(batch) < MAX_BATCH:
        if not sub.queue.empty():
            item = sub.queue.get_nowait()
        else:
            remaining = deadline - loop.time()
            if ended or remaining <= 0:
                break
            try:
                item = await within(sub.queue.get(), remaining)
            except TimeoutError:
                break
        if item is None:
            return batch, True
        batch.append(item)
        ended = ended or isinstance(item[1], ev.CallEnded)
    return batch, False


async def record_call(deps: RecorderDeps, call_sid: str) -> None:
    """Persist the call's log incrementally; returns once call.ended is durably stored and the
    post-call work (analysis, cost, webhook) is done."""
    async with deps.sessions() as session:
        row = (
            await session.execute(
                select(Call.last_entry_id, Call.status).where(Call.call_sid == call_sid)
            )
        ).one_or_none()
    cursor = row.last_entry_id if row is not None else None
    if row is not None and row.status == "completed":
        # A replica died after storing call.ended but before acking: only post-call is left.
        await run_postcall(deps.postcall, call_sid)
        return
    memory = LogMemory(call_sid, from_start=cursor in (None, "0-0"))
    sub = await deps.mux.subscribe(deps.log.key(call_sid), after=cursor or "0-0")
    follow_started(deps.metrics)
    try:
        while True:
            batch, closed = await collect(sub, deps.flush_s)
            ended = False
            if batch:
                with batch_observed(deps.metrics, call_sid, batch, sub.queue.qsize()):
                    async with deps.sessions() as session:
                        ended = await persist(session, call_sid, batch, memory)
                        await session.commit()
                memory.committed()
            if ended:
                await deps.log.expire(call_sid, deps.stream_ttl_s)
                break
            if closed:  # the mux is closing: leave the work item pending
                raise ConnectionError(f"call log of {call_sid} closed before call.ended")
    finally:
        follow_ended(deps.metrics, call_sid)
        await deps.mux.unsubscribe(sub)
    await run_postcall(deps.postcall, call_sid)


async def catch_up(deps: RecorderDeps, call_sid: str) -> None:
    """Store whatever the log holds past the cursor (used for call.ended work items)."""
    async with deps.sessions() as session:
        cursor = await session.scalar(select(Call.last_entry_id).where(Call.call_sid == call_sid))
    entries = await deps.log.entries(call_sid, f"({cursor}" if cursor else "-")
    if not entries:
        return
    memory = LogMemory(call_sid, from_start=cursor in (None, "0-0"))
    with batch_observed(deps.metrics, call_sid, entries, 0):
        async with deps.sessions() as session:
            ended = await persist(session, call_sid, entries, memory)
            await session.commit()
    if ended and any(isinstance(e, ev.CallEnded) for _, e in entries):
        await deps.log.expire(call_sid, deps.stream_ttl_s)
