"""Follow one call's log from where Postgres says we stopped, until call.ended is stored.

A call is followed for at most `max_call_s` from its start: a call whose `call.ended` never
comes (its stream never started, its media replica vanished) is ended by the recorder with
reason `recorder-timeout`, so abandoned calls cannot fill the recorder's slots. After
`call.ended` (and the post-call work, which is not delayed), the log is still followed for
`late_grace_s`, so what is written just after the end (the LLM usage of the last turn) is
stored, and the call is priced again with it.

Group commit: once an entry arrives, entries are collected for up to `flush_s` (or MAX_BATCH of
them, or until call.ended) and stored in one transaction. Nothing waits on the recorder during a
call, so the delay only matters for call.ended, which is stored at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.recorder.dead_letters.storing import CallWriter
from services.recorder.dead_letters.work_items import TELEPHONY_USAGE, checked
from services.recorder.memory import LogMemory
from services.recorder.postcall import PostCallDeps, recost, run_postcall
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
DEFAULT_MAX_CALL_S: int = Settings.model_fields["recorder_max_call_s"].default
DEFAULT_LATE_GRACE_S: float = Settings.model_fields["recorder_late_grace_s"].default
DEFAULT_ENTRY_ATTEMPTS: int = Settings.model_fields["recorder_entry_attempts"].default
TIMEOUT_REASON = "recorder-timeout"


@dataclass
class RecorderDeps:
    """What every followed call on this replica shares."""

    log: CallLog
    mux: StreamMux
    sessions: async_sessionmaker[AsyncSession]
    stream_ttl_s: int
    postcall: PostCallDeps
    flush_s: float = DEFAULT_FLUSH_S
    max_call_s: float = DEFAULT_MAX_CALL_S
    late_grace_s: float = DEFAULT_LATE_GRACE_S
    entry_attempts: int = DEFAULT_ENTRY_ATTEMPTS

    def writer(self, call_sid: str, memory: LogMemory) -> CallWriter:
        """Writes `call_sid`'s batches, dead-lettering entries that cannot be stored."""
        return CallWriter(
            self.sessions, call_sid, self.log.key(call_sid), self.entry_attempts, memory
        )

    metrics: Metrics = field(default_factory=Metrics)  # this replica's Prometheus metrics


async def collect(
    sub: Subscription, flush_s: float, wait_s: float | None = None
) -> tuple[list[Entry], bool]:
    """The next batch: the first entry (waited for up to `wait_s`; none: forever), then
    whatever arrives within `flush_s` of it, up to MAX_BATCH entries; call.ended ends it at
    once (with what is already queued behind it). Also returns whether the subscription closed
    (the batch may still hold entries). No entry within `wait_s`: an empty batch."""
    try:
        first = await within(sub.queue.get(), wait_s)
    except TimeoutError:
        return [], False
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
    """Persist the call's log incrementally; once call.ended is durably stored (or the call
    outlived `max_call_s` and was ended here), run the post-call work (analysis, cost,
    webhook), then store what still arrives for `late_grace_s` and price the call again if
    that included usage."""
    async with deps.sessions() as session:
        row = (
            await session.execute(
                select(Call.last_entry_id, Call.status, Call.started_at).where(
                    Call.call_sid == call_sid
                )
            )
        ).one_or_none()
    cursor = row.last_entry_id if row is not None else None
    if row is not None and row.status == "completed":
        # A replica died after storing call.ended but before acking: only post-call is left.
        await run_postcall(deps.postcall, call_sid)
        return
    started = row.started_at.timestamp() if row is not None else time.time()
    give_up_at = started + deps.max_call_s
    writer = deps.writer(call_sid, LogMemory(call_sid, from_start=cursor in (None, "0-0")))
    sub = await deps.mux.subscribe(deps.log.key(call_sid), after=cursor or "0-0")
    ended_at: float | None = None  # wall clock when call.ended was stored
    late_usage = False
    follow_started(deps.metrics)
    try:
        while True:
            deadline = give_up_at if ended_at is None else ended_at + deps.late_grace_s
            wait_s = deadline - time.time()
            if wait_s <= 0:
                if ended_at is not None:
                    break
                await end_abandoned(deps, call_sid, started)
                give_up_at = float("inf")  # now wait for that call.ended to be stored
                continue
            batch, closed = await collect(sub, deps.flush_s, wait_s)
            if batch and ended_at is not None:
                late_usage = late_usage or any(isinstance(e, ev.Usage) for _, e in batch)
            if batch:
                with batch_observed(deps.metrics, call_sid, batch, sub.queue.qsize()):
                    stored_end = await writer.store(batch)
                if stored_end and ended_at is None:
                    ended_at = time.time()
                await deps.log.expire(call_sid, deps.stream_ttl_s)
                # analysis, cost and webhook at once, as soon as the call is over
                await run_postcall(deps.postcall, call_sid)
            if closed:  # the mux is closing: leave the work item pending
                raise ConnectionError(f"call log of {call_sid} closed before call.ended")
    finally:
        follow_ended(deps.metrics, call_sid)
        await deps.mux.unsubscribe(sub)
    if late_usage:  # usage written after call.ended (the last LLM stream): price it too
        await recost(deps.postcall, call_sid)


async def end_abandoned(deps: RecorderDeps, call_sid: str, started: float) -> None:
    """End a call that outlived `max_call_s` without call.ended: write the call.ended its
    media never wrote (reason `recorder-timeout`) to its log, as any other writer would."""
    log.warning("call never ended; ending it", extra={"call_sid": call_sid})
    now = time.time()
    await deps.log.append(
        ev.CallEnded(call_sid=call_sid, reason=TIMEOUT_REASON, duration_s=max(now - started, 0.0))
    )


async def catch_up(deps: RecorderDeps, call_sid: str) -> None:
    """Store whatever the log holds past the cursor (used for call.ended work items)."""
    async with deps.sessions() as session:
        cursor = await session.scalar(select(Call.last_entry_id).where(Call.call_sid == call_sid))
    entries = await deps.log.entries(call_sid, f"({cursor}" if cursor else "-")
    if not entries:
        return
    writer = deps.writer(call_sid, LogMemory(call_sid, from_start=cursor in (None, "0-0")))
    with batch_observed(deps.metrics, call_sid, entries, 0):
        stored_end = await writer.store(entries)
    if stored_end:
        await deps.log.expire(call_sid, deps.stream_ttl_s)
    if any(isinstance(event, ev.Usage) for _, event in entries):
        await recost(deps.postcall, call_sid)  # usage that came after post-call priced it


async def handle_work_item(deps: RecorderDeps, fields: dict[str, str]) -> None:
    """One `fd:calls` work item: follow a started call, catch up on an ended one, or price a
    call again once Twilio reported its duration. A malformed item raises `PoisonItem`."""
    kind, call_sid = checked(fields)
    if kind == "call.started":
        await record_call(deps, call_sid)
    elif kind == TELEPHONY_USAGE:
        await recost(deps.postcall, call_sid)
    else:
        await catch_up(deps, call_sid)
