"""Write a batch of call-log entries to Postgres, idempotently (keyed by stream entry id)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.recorder.derive import Derivation, ts
from shared import events as ev
from shared.bus import stream_id
from shared.db.models import Call, CallEvent


async def persist(session: AsyncSession, call_sid: str, batch: list[tuple[str, ev.Event]]) -> bool:
    """Store `batch` (in log order) and advance the call's cursor; True once call.ended is in."""
    ended = False
    derivation = Derivation(session, call_sid)
    for entry_id, event in batch:
        if isinstance(event, ev.CallStarted):
            await session.execute(
                insert(Call)
                .values(
                    call_sid=call_sid,
                    tenant_id=event.tenant_id or None,
                    from_number=event.from_number,
                    to_number=event.to_number,
                    direction=event.direction,
                    pipeline=event.pipeline,
                    status="in-progress",
                    started_at=ts(event.at),
                    last_entry_id="0-0",
                )
                .on_conflict_do_nothing(index_elements=["call_sid"])
            )
        stored = await session.execute(
            insert(CallEvent)
            .values(
                call_sid=call_sid,
                entry_id=entry_id,
                type=event.type,
                at=ts(event.at),
                payload=event.model_dump(mode="json"),
            )
            .on_conflict_do_nothing(index_elements=["call_sid", "entry_id"])
            .returning(CallEvent.id)
        )
        if stored.scalar_one_or_none() is None:
            ended = ended or isinstance(event, ev.CallEnded)
            continue  # already stored by an earlier (crashed) recorder
        await derivation.apply(entry_id, event)
        ended = ended or isinstance(event, ev.CallEnded)
    if batch:
        last = batch[-1][0]
        current = await session.scalar(select(Call.last_entry_id).where(Call.call_sid == call_sid))
        if current is not None and stream_id(last) > stream_id(current):
            await session.execute(
                update(Call).where(Call.call_sid == call_sid).values(last_entry_id=last)
            )
    return ended
