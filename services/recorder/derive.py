"""Rows derived from one newly stored call-log entry: transcript, turns, tools, usage, signals.

Called only for entries stored for the first time (the raw `call_events` insert is the
idempotency gate), so appends and counters here never run twice for one entry.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared import events as ev
from shared.db.models import (
    BargeInRecord,
    Call,
    CallEvent,
    DtmfPress,
    ToolInvocation,
    TranscriptLine,
    Turn,
    UsageRecord,
)

STAGE_COLUMNS: dict[str, str] = {
    "speech_end": "speech_end_at",
    "stt_final": "stt_final_at",
    "llm_request": "llm_request_at",
    "llm_first_token": "llm_first_token_at",
    "first_speakable": "first_speakable_at",
    "tts_first_byte": "tts_first_byte_at",
    "first_audio_sent": "first_audio_sent_at",
}
PROVIDER_COLUMN_BY_METRIC: dict[str, str] = {
    "stt_seconds": "stt_provider",
    "prompt_tokens": "llm_provider",
    "completion_tokens": "llm_provider",
    "tts_characters": "tts_provider",
}
ULAW_BYTES_PER_MS = 8  # µ-law 8 kHz: what agent segment lengths are measured in


def ts(epoch: float) -> datetime:
    """An aware UTC datetime from epoch seconds."""
    return datetime.fromtimestamp(epoch, UTC)


class Derivation:
    """Derives rows for one call; caches what several events need (call start, stream start)."""

    def __init__(self, session: AsyncSession, call_sid: str) -> None:
        self.session = session
        self.call_sid = call_sid
        self._started_at: float | None = None

    async def offset_ms(self, at: float) -> int | None:
        """Milliseconds from the call's start to `at` (wall clock)."""
        if self._started_at is None:
            started = await self.session.scalar(
                select(Call.started_at).where(Call.call_sid == self.call_sid)
            )
            if started is None:
                return None
            self._started_at = started.timestamp()
        return round((at - self._started_at) * 1000)

    async def apply(self, entry_id: str, event: ev.Event) -> None:
        """Write the rows `event` implies."""
        if isinstance(event, ev.TranscriptFinal):
            await self._transcript_final(event)
        elif isinstance(event, ev.TurnRequested):
            await self._turn_requested(entry_id, event)
        elif isinstance(event, ev.AgentText):
            await self._agent_text(event)
        elif isinstance(event, ev.SegmentPlayed) and not event.cleared:
            await self._segment_played(entry_id, event)
        elif isinstance(event, ev.BargeIn):
            await self._barge_in(entry_id, event)
        elif isinstance(event, ev.Dtmf):
            await self._dtmf(entry_id, event)
        elif isinstance(event, ev.ToolResult):
            await self._tool_result(event)
        elif isinstance(event, ev.Usage):
            await self._usage(entry_id, event)
        elif isinstance(event, ev.CallIntent) and event.kind == "transfer":
            await self._set_call(transfer_target=event.target or None)
        elif isinstance(event, ev.LatencyMark):
            column = STAGE_COLUMNS[event.stage]
            await self._upsert_turn(event.turn_id, {column: ts(event.stage_at)})
        elif isinstance(event, ev.CallEnded):
            await self._set_call(
                status="completed",
                end_reason=event.reason[:64],  # the full reason stays in call_events
                ended_at=ts(event.at),
                duration_s=event.duration_s,
                recorded_at=func.now(),
            )

    # ---- helpers -------------------------------------------------------------------------
    async def _set_call(self, **values: Any) -> None:
        await self.session.execute(
            update(Call).where(Call.call_sid == self.call_sid).values(**values)
        )

    async def _upsert_turn(self, turn_id: int, values: dict[str, Any]) -> None:
        await self.session.execute(
            insert(Turn)
            .values(call_sid=self.call_sid, turn_id=turn_id, **values)
            .on_conflict_do_update(index_elements=["call_sid", "turn_id"], set_=values)
        )

    async def _event_payload(self, event_type: str, key: str, value: str) -> dict[str, Any] | None:
        payload: dict[str, Any] | None = await self.session.scalar(
            select(CallEvent.payload)
            .where(
                CallEvent.call_sid == self.call_sid,
                CallEvent.type == event_type,
                CallEvent.payload[key].astext == value,
            )
            .order_by(CallEvent.id)
            .limit(1)
        )
        return payload

    async def _last_turn_requested(self) -> int:
        last = await self.session.scalar(
            select(func.max(CallEvent.payload["turn_id"].as_integer())).where(
                CallEvent.call_sid == self.call_sid, CallEvent.type == "turn.requested"
            )
        )
        return int(last or 0)

    # ---- per event type ------------------------------------------------------------------
    async def _transcript_final(self, event: ev.TranscriptFinal) -> None:
        """Caller audio span of the turn being spoken (the next turn to be requested)."""
        turn_id = await self._last_turn_requested() + 1
        await self.session.execute(
            insert(Turn)
            .values(
                call_sid=self.call_sid,
                turn_id=turn_id,
                caller_start_ms=event.audio_start_ms,
                caller_end_ms=event.audio_end_ms,
            )
            .on_conflict_do_update(
                index_elements=["call_sid", "turn_id"],
                set_={
                    "caller_start_ms": func.least(Turn.caller_start_ms, event.audio_start_ms),
                    "caller_end_ms": func.greatest(Turn.caller_end_ms, event.audio_end_ms),
                },
            )
        )

    async def _stream_offset_ms(self, before: float) -> int:
        """Offset of the media stream (its audio clock's zero) from the call's start."""
        started = await self.session.scalar(
            select(CallEvent.at)
            .where(
                CallEvent.call_sid == self.call_sid,
                CallEvent.type == "stream.started",
                CallEvent.at <= ts(before),
            )
            .order_by(CallEvent.id.desc())
            .limit(1)
        )
        if started is None:
            return 0
        return await self.offset_ms(started.timestamp()) or 0

    async def _turn_requested(self, entry_id: str, event: ev.TurnRequested) -> None:
        await self._upsert_turn(event.turn_id, {"caller_text": event.text})
        span = (
            await self.session.execute(
                select(Turn.caller_start_ms, Turn.caller_end_ms).where(
                    Turn.call_sid == self.call_sid, Turn.turn_id == event.turn_id
                )
            )
        ).one()
        base = await self._stream_offset_ms(event.at)
        await self.session.execute(
            insert(TranscriptLine)
            .values(
                call_sid=self.call_sid,
                entry_id=entry_id,
                turn_id=event.turn_id,
                role="caller",
                text=event.text,
                at=ts(event.at),
                start_ms=None if span.caller_start_ms is None else base + span.caller_start_ms,
                end_ms=None if span.caller_end_ms is None else base + span.caller_end_ms,
            )
            .on_conflict_do_nothing(index_elements=["call_sid", "entry_id"])
        )

    async def _agent_text(self, event: ev.AgentText) -> None:
        text = event.text.strip()
        if not text:
            return
        await self.session.execute(
            insert(Turn)
            .values(call_sid=self.call_sid, turn_id=event.turn_id, agent_text=text)
            .on_conflict_do_update(
                index_elements=["call_sid", "turn_id"],
                set_={"agent_text": func.btrim(Turn.agent_text + " " + text)},
            )
        )

    async def _segment_played(self, entry_id: str, event: ev.SegmentPlayed) -> None:
        sent = await self._event_payload("audio.segment_sent", "mark", event.mark)
        if sent is None:
            return
        text = str(sent["text"])
        end_ms = await self.offset_ms(event.at)
        audio_ms = int(sent.get("audio_bytes", 0)) // ULAW_BYTES_PER_MS
        await self.session.execute(
            insert(TranscriptLine)
            .values(
                call_sid=self.call_sid,
                entry_id=entry_id,
                turn_id=event.turn_id,
                role="agent",
                text=text,
                at=ts(event.at),
                start_ms=None if end_ms is None else max(end_ms - audio_ms, 0),
                end_ms=end_ms,
            )
            .on_conflict_do_nothing(index_elements=["call_sid", "entry_id"])
        )
        await self.session.execute(
            insert(Turn)
            .values(call_sid=self.call_sid, turn_id=event.turn_id, heard_text=text)
            .on_conflict_do_update(
                index_elements=["call_sid", "turn_id"],
                set_={"heard_text": func.btrim(Turn.heard_text + " " + text)},
            )
        )

    async def _barge_in(self, entry_id: str, event: ev.BargeIn) -> None:
        await self.session.execute(
            insert(BargeInRecord)
            .values(
                call_sid=self.call_sid,
                turn_id=event.turn_id,
                entry_id=entry_id,
                at=ts(event.trigger_at),
                offset_ms=await self.offset_ms(event.trigger_at),
            )
            .on_conflict_do_nothing(index_elements=["call_sid", "turn_id"])
        )
        await self._upsert_turn(event.turn_id, {"barged_in": True, "heard_text": event.heard_text})

    async def _dtmf(self, entry_id: str, event: ev.Dtmf) -> None:
        await self.session.execute(
            insert(DtmfPress)
            .values(
                call_sid=self.call_sid,
                entry_id=entry_id,
                digit=event.digit,
                at=ts(event.at),
                offset_ms=await self.offset_ms(event.at),
            )
            .on_conflict_do_nothing(index_elements=["call_sid", "entry_id"])
        )

    async def _tool_result(self, event: ev.ToolResult) -> None:
        """Duration and error of the invocation; the row itself when no tools replica wrote
        one (the brain's timeout result)."""
        requested = await self._event_payload("tool.requested", "tool_call_id", event.tool_call_id)
        duration_ms = None
        arguments: dict[str, Any] = {}
        if requested is not None:
            duration_ms = round((event.at - float(requested["at"])) * 1000, 1)
            arguments = _arguments(str(requested.get("arguments", "")))
        error = None if event.ok else event.content
        await self.session.execute(
            insert(ToolInvocation)
            .values(
                tool_call_id=event.tool_call_id,
                call_sid=self.call_sid,
                tenant_id=event.tenant_id or None,
                name=event.name,
                arguments=arguments,
                ok=event.ok,
                result=event.content,
                duration_ms=duration_ms,
                error=error,
            )
            .on_conflict_do_update(
                index_elements=["tool_call_id"],
                set_={"duration_ms": duration_ms, "error": error},
                where=ToolInvocation.duration_ms.is_(None),
            )
        )

    async def _usage(self, entry_id: str, event: ev.Usage) -> None:
        await self.session.execute(
            insert(UsageRecord)
            .values(
                call_sid=self.call_sid,
                tenant_id=event.tenant_id or None,
                source=entry_id,
                provider=event.provider,
                metric=event.metric,
                quantity=Decimal(str(event.quantity)),
                at=ts(event.at),
            )
            .on_conflict_do_nothing(index_elements=["call_sid", "source", "provider", "metric"])
        )
        column = PROVIDER_COLUMN_BY_METRIC.get(event.metric)
        if column is not None:
            await self.session.execute(
                update(Call)
                .where(Call.call_sid == self.call_sid, getattr(Call, column).is_(None))
                .values({column: event.provider})
            )


def _arguments(raw: str) -> dict[str, Any]:
    try:
        parsed = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {"_raw": raw}
    return parsed if isinstance(parsed, dict) else {"_raw": raw}
