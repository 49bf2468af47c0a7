"""Follow one call's log from where Postgres says we stopped, until call.ended is stored."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.recorder.persist import persist
from services.recorder.postcall import PostCallDeps, run_postcall
from shared import events as ev
from shared.bus import CallLog
from shared.db.models import Call
from shared.stream_mux import StreamMux

log = logging.getLogger(__name__)

MAX_BATCH = 256


@dataclass
class RecorderDeps:
    """What every followed call on this replica shares."""

    log: CallLog
    mux: StreamMux
    sessions: async_sessionmaker[AsyncSession]
    stream_ttl_s: int
    postcall: PostCallDeps


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
    sub = await deps.mux.subscribe(deps.log.key(call_sid), after=cursor or "0-0")
    try:
        while True:
            first = await sub.next()
            if first is None:  # the mux is closing: leave the work item pending
                raise ConnectionError(f"call log of {call_sid} closed before call.ended")
            batch = [first]
            while len(batch) < MAX_BATCH and not sub.queue.empty():
                item = sub.queue.get_nowait()
                if item is None:
                    break
                batch.append(item)
            async with deps.sessions() as session:
                ended = await persist(session, call_sid, batch)
                await session.commit()
            if ended:
                await deps.log.expire(call_sid, deps.stream_ttl_s)
                break
    finally:
        await deps.mux.unsubscribe(sub)
    await run_postcall(deps.postcall, call_sid)


async def catch_up(deps: RecorderDeps, call_sid: str) -> None:
    """Store whatever the log holds past the cursor (used for call.ended work items)."""
    async with deps.sessions() as session:
        cursor = await session.scalar(select(Call.last_entry_id).where(Call.call_sid == call_sid))
    entries = await deps.log.entries(call_sid, f"({cursor}" if cursor else "-")
    if not entries:
        return
    async with deps.sessions() as session:
        ended = await persist(session, call_sid, entries)
        await session.commit()
    if ended and any(isinstance(e, ev.CallEnded) for _, e in entries):
        await deps.log.expire(call_sid, deps.stream_ttl_s)
