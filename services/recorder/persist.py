"""Write a batch of call-log entries to Postgres, idempotently (keyed by stream entry id)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared import events as ev
from shared.bus import stream_id
from shared.db.models import Call, CallEvent, TranscriptLine, Turn

_STAGE_COLUMNS: dict[str, str] = {
    "speech_end": "speech_end_at",
    "stt_final": "stt_final_at",
    "llm_request": "llm_request_at",
    "llm_first_token": "llm_first_token_at",
    "first_speakable": "first_speakable_at",
    "tts_first_byte": "tts_first_byte_at",
    "first_audio_sent": "first_audio_sent_at",
}


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


async def persist(session: AsyncSession, call_sid: str, batch: list[tuple[str, ev.Event]]) -> bool:
    """Store `batch` (in log order) and advance the call's cursor; True once call.ended is in."""
    ended = False
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
                    started_at=_ts(event.at),
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
                at=_ts(event.at),
                payload=event.model_dump(mode="json"),
            )
            .on_conflict_do_nothing(index_elements=["call_sid", "entry_id"])
            .returning(CallEvent.id)
        )
        if stored.scalar_one_or_none() is None:
            ended = ended or isinstance(event, ev.CallEnded)
            continue  # already stored by an earlier (crashed) recorder
        await _derive(session, call_sid, entry_id, event)
        ended = ended or isinstance(event, ev.CallEnded)
    if batch:
        last = batch[-1][0]
        current = await session.scalar(select(Call.last_entry_id).where(Call.call_sid == call_sid))
        if current is not None and stream_id(last) > stream_id(current):
            await session.execute(
                update(Call).where(Call.call_sid == call_sid).values(last_entry_id=last)
            )
    return ended


async def _derive(session: AsyncSession, call_sid: str, entry_id: str, event: ev.Event) -> None:
    """Rows derived from an event: transcript lines, turns with latency, call totals."""
    if isinstance(event, ev.TurnRequested):
        await session.execute(
            insert(TranscriptLine)
            .values(
                call_sid=call_sid,
                entry_id=entry_id,
                turn_id=event.turn_id,
                role="caller",
                text=event.text,
                at=_ts(event.at),
            )
            .on_conflict_do_nothing(index_elements=["call_sid", "entry_id"])
        )
        await session.execute(
            insert(Turn)
            .values(
                call_sid=call_sid,
                turn_id=event.turn_id,
                caller_text=event.text,
            )
            .on_conflict_do_update(
                index_elements=["call_sid", "turn_id"], set_={"caller_text": event.text}
            )
        )
    elif isinstance(event, ev.SegmentPlayed) and not event.cleared:
        sent = await session.scalar(
            select(CallEvent.payload).where(
                CallEvent.call_sid == call_sid,
                CallEvent.type == "audio.segment_sent",
                CallEvent.payload["mark"].astext == event.mark,
            )
        )
        if sent is not None:
            await session.execute(
                insert(TranscriptLine)
                .values(
                    call_sid=call_sid,
                    entry_id=entry_id,
                    turn_id=event.turn_id,
                    role="agent",
                    text=str(sent["text"]),
                    at=_ts(event.at),
                )
                .on_conflict_do_nothing(index_elements=["call_sid", "entry_id"])
            )
    elif isinstance(event, ev.LatencyMark):
        column = _STAGE_COLUMNS[event.stage]
        await session.execute(
            insert(Turn)
            .values(
                call_sid=call_sid,
                turn_id=event.turn_id,
                **{column: _ts(event.stage_at)},
            )
            .on_conflict_do_update(
                index_elements=["call_sid", "turn_id"], set_={column: _ts(event.stage_at)}
            )
        )
    elif isinstance(event, ev.CallEnded):
        await session.execute(
            update(Call)
            .where(Call.call_sid == call_sid)
            .values(
                status="completed",
                end_reason=event.reason,
                ended_at=_ts(event.at),
                duration_s=event.duration_s,
            )
        )
