"""Write a batch of call-log entries to Postgres, idempotently (keyed by stream entry id).

One multi-row insert stores the raw entries; the entries it actually inserted (not stored
before by a crashed or concurrent recorder) are then derived, in log order.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.recorder.derive import Derivation
from services.recorder.memory import LogMemory, ts
from shared.bus.streams import stream_id
from shared.contract import events as ev
from shared.db.models import Call

INSERT_EVENTS = text(
    """
    WITH advance AS (
        UPDATE calls SET last_entry_id = :last_entry_id
        WHERE call_sid = :call_sid
          AND (split_part(last_entry_id, '-', 1)::bigint, split_part(last_entry_id, '-', 2)::bigint)
              < (:last_ms, :last_seq)
    )
    INSERT INTO call_events (call_sid, entry_id, type, at, payload)
    SELECT :call_sid, e.entry_id, e.type, e.at, e.payload::jsonb
    FROM unnest(
        CAST(:entry_ids AS text[]), CAST(:types AS text[]),
        CAST(:ats AS timestamptz[]), CAST(:payloads AS text[])
    ) WITH ORDINALITY AS e(entry_id, type, at, payload, n)
    ORDER BY e.n
    ON CONFLICT (call_sid, entry_id, at) DO NOTHING
    RETURNING entry_id
    """
)
"""All of a batch's raw rows in one statement (ids in log order), returning the new ones;
also moves the call's cursor forward to the batch's last entry (never back)."""


async def persist(
    session: AsyncSession,
    call_sid: str,
    batch: list[tuple[str, ev.Event]],
    memory: LogMemory | None = None,
) -> bool:
    """Store `batch` (in log order) and advance the call's cursor; True once call.ended is in.

    `memory` carries what earlier batches of the same follower saw (contiguous batches only);
    without it, whatever precedes the batch is looked up in Postgres.
    """
    if not batch:
        return False
    memory = memory or LogMemory(call_sid)
    for _, event in batch:
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
    last_ms, last_seq = stream_id(batch[-1][0])
    stored = await session.execute(
        INSERT_EVENTS,
        {
            "call_sid": call_sid,
            "last_entry_id": batch[-1][0],
            "last_ms": last_ms,
            "last_seq": last_seq,
            "entry_ids": [entry_id for entry_id, _ in batch],
            "types": [event.type for _, event in batch],
            "ats": [ts(event.at) for _, event in batch],
            "payloads": [event.model_dump_json() for _, event in batch],
        },
    )
    new = set(stored.scalars())
    derivation = Derivation(session, call_sid, memory)
    memory.begin(batch[0][0])
    for entry_id, event in batch:
        if entry_id in new:
            await derivation.apply(entry_id, event)
        memory.observe(event)
    await derivation.finish()
    return any(isinstance(event, ev.CallEnded) for _, event in batch)
