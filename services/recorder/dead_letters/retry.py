"""Operator actions on dead letters: list them, and retry them once the cause is fixed.

A dead work item is published again to its work stream (as a new entry: its worker handles
it afresh). A dead call-log entry is stored again under its original entry id (the idempotency
key), as the recorder would have: on success it is marked `retried`; on failure it stays dead
with the new error and one more attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.recorder.persist import persist
from shared.contract import keys
from shared.contract.events import UnknownEvent, decode
from shared.db.dead_letters import ERROR_CHARS, DeadLetterRow, printable
from shared.runtime.outage import is_transient


@dataclass(frozen=True)
class RetryOutcome:
    """What happened to one dead letter."""

    id: int
    ok: bool
    detail: str


async def dead_letters(
    sessions: async_sessionmaker[AsyncSession], *, include_retried: bool = False
) -> list[DeadLetterRow]:
    """Dead letters, oldest first."""
    query = select(DeadLetterRow).order_by(DeadLetterRow.id)
    if not include_retried:
        query = query.where(DeadLetterRow.status == "dead")
    async with sessions() as session:
        return list((await session.scalars(query)).all())


async def retry(
    sessions: async_sessionmaker[AsyncSession], redis: Redis, ids: list[int] | None
) -> list[RetryOutcome]:
    """Retry the dead letters with these ids (None: every one still dead)."""
    query = select(DeadLetterRow).where(DeadLetterRow.status == "dead").order_by(DeadLetterRow.id)
    if ids is not None:
        query = query.where(DeadLetterRow.id.in_(ids))
    async with sessions() as session:
        rows = list((await session.scalars(query)).all())
    outcomes = [await _retry_one(sessions, redis, row) for row in rows]
    missing = set(ids or []) - {row.id for row in rows}
    outcomes += [RetryOutcome(i, False, "no such dead letter") for i in sorted(missing)]
    return outcomes


async def _retry_one(
    sessions: async_sessionmaker[AsyncSession], redis: Redis, row: DeadLetterRow
) -> RetryOutcome:
    fields = row.fields()
    if row.stream in keys.WORK_STREAMS:
        payload: Any = fields
        new_id: Any = await redis.xadd(row.stream, payload)
        await _mark(sessions, row.id, retried=True)
        return RetryOutcome(row.id, True, f"published again to {row.stream} as {new_id}")
    try:
        event = decode(fields)
    except UnknownEvent as exc:
        await _mark(sessions, row.id, retried=False, error=f"UnknownEvent: {exc}")
        return RetryOutcome(row.id, False, f"cannot decode: {exc}")
    try:
        async with sessions() as session:
            await persist(session, event.call_sid, [(row.entry_id, event)])
            await session.commit()
    except Exception as exc:
        if is_transient(exc):
            raise
        error = f"{type(exc).__name__}: {exc}"
        await _mark(sessions, row.id, retried=False, error=error)
        return RetryOutcome(row.id, False, error[:300])
    await _mark(sessions, row.id, retried=True)
    return RetryOutcome(row.id, True, f"stored {row.entry_id} of {event.call_sid}")


async def _mark(
    sessions: async_sessionmaker[AsyncSession],
    dead_letter_id: int,
    *,
    retried: bool,
    error: str | None = None,
) -> None:
    values: dict[str, Any] = {"retried_at": func.now(), "attempts": DeadLetterRow.attempts + 1}
    if retried:
        values["status"] = "retried"
    if error is not None:
        values["error"] = printable(error, ERROR_CHARS)
    async with sessions() as session:
        await session.execute(
            update(DeadLetterRow).where(DeadLetterRow.id == dead_letter_id).values(**values)
        )
        await session.commit()
