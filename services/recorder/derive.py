"""Rows derived from newly stored call-log entries: transcript, turns, tools, usage, signals.

Called only for entries stored for the first time (the raw `call_events` insert is the
idempotency gate), so appends and counters here never run twice for one entry. Entries are
applied in log order; what they need to know about earlier entries comes from `LogMemory`
(never from `call_events`, which already holds the rest of the batch). Writes are collected and
made at `finish`, all in one statement: the turn upserts (coalesced per turn), the transcript
lines and the usage records (one multi-row insert each), and the `calls` update (end of call,
transfer target, providers not known to be set yet). Only reads force a write earlier (a turn's
caller span for its transcript line).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import text as sql_text
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.recorder.memory import LogMemory, ts
from services.recorder.turn_writes import TurnWrites
from services.recorder.writes import Write, execute
from shared.contract import events as ev
from shared.db.models import BargeInRecord, DtmfPress, ToolInvocation

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

# A batch's transcript lines / usage records in one statement each (ids in log order); the
# parameters are one array per column (`_columns`), so the statement text never changes.
INSERT_LINES = """
    INSERT INTO transcript_lines
        (call_sid, entry_id, turn_id, role, text, at, start_ms, end_ms, kind)
    SELECT :l_call_sid, r.entry_id, r.turn_id, r.role, r.text, r.at, r.start_ms, r.end_ms, r.kind
    FROM unnest(
        CAST(:l_0 AS text[]), CAST(:l_1 AS integer[]), CAST(:l_2 AS text[]),
        CAST(:l_3 AS text[]), CAST(:l_4 AS timestamptz[]), CAST(:l_5 AS integer[]),
        CAST(:l_6 AS integer[]), CAST(:l_7 AS text[])
    ) WITH ORDINALITY AS r(entry_id, turn_id, role, text, at, start_ms, end_ms, kind, n)
    ORDER BY r.n
    ON CONFLICT (call_sid, entry_id, at) DO NOTHING"""
INSERT_USAGE = """
    INSERT INTO usage_records (call_sid, tenant_id, source, provider, metric, quantity, at)
    SELECT :u_call_sid, r.tenant_id, r.source, r.provider, r.metric, r.quantity, r.at
    FROM unnest(
        CAST(:u_0 AS text[]), CAST(:u_1 AS text[]), CAST(:u_2 AS text[]),
        CAST(:u_3 AS text[]), CAST(:u_4 AS numeric[]), CAST(:u_5 AS timestamptz[])
    ) WITH ORDINALITY AS r(tenant_id, source, provider, metric, quantity, at, n)
    ORDER BY r.n
    ON CONFLICT (call_sid, source, provider, metric) DO NOTHING"""
CALL_COLUMNS = frozenset(
    {"status", "end_reason", "ended_at", "duration_s", "recorded_at", "transfer_target"}
)


def _columns(prefix: str, call_sid: str, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Parameters of INSERT_LINES / INSERT_USAGE: column i of `rows` as `{prefix}_{i}`."""
    columns = zip(*rows, strict=True)
    return {f"{prefix}_call_sid": call_sid} | {
        f"{prefix}_{i}": list(col) for i, col in enumerate(columns)
    }


def _update_call(call_sid: str, values: dict[str, Any], providers: dict[str, str]) -> Write:
    """`UPDATE calls`: plain values (`recorded_at`: the transaction's time), and provider
    columns set only where still NULL."""
    assert set(values) <= CALL_COLUMNS and set(providers) <= set(PROVIDER_COLUMN_BY_METRIC.values())
    sets = [f"{c} = now()" if c == "recorded_at" else f"{c} = :c_{c}" for c in sorted(values)] + [
        f"{c} = coalesce({c}, :c_{c})" for c in sorted(providers)
    ]
    params = {f"c_{c}": v for c, v in values.items() if c != "recorded_at"}
    params |= {f"c_{c}": p for c, p in providers.items()}
    params["c_call_sid"] = call_sid
    return Write(f"UPDATE calls SET {', '.join(sets)} WHERE call_sid = :c_call_sid", params)


class Derivation:
    """Derives the rows of one batch of one call."""

    def __init__(self, session: AsyncSession, call_sid: str, memory: LogMemory) -> None:
        self.session = session
        self.call_sid = call_sid
        self.memory = memory
        self.turns = TurnWrites(session, call_sid)
        self._lines: list[tuple[Any, ...]] = []  # in INSERT_LINES column order
        self._usage: list[tuple[Any, ...]] = []  # in INSERT_USAGE column order
        self._call: dict[str, Any] = {}  # plain values for `calls`, later ones win
        self._providers: dict[str, str] = {}  # provider column -> first provider of the batch

    async def offset_ms(self, at: float) -> int | None:
        """Milliseconds from the call's start to `at` (wall clock)."""
        started = await self.memory.started_at(self.session)
        return None if started is None else round((at - started) * 1000)

    async def apply(self, entry_id: str, event: ev.Event) -> None:
        """Derive what `event` implies (written at `finish`, or sooner when read back)."""
        if isinstance(event, ev.LatencyMark):
            self.turns.set(event.turn_id, {STAGE_COLUMNS[event.stage]: ts(event.stage_at)})
        elif isinstance(event, ev.AgentText):
            text = event.text.strip()
            if text:
                await self.turns.append(event.turn_id, "agent_text", text)
        elif isinstance(event, ev.Usage):
            self._usage_row(entry_id, event)
        elif isinstance(event, ev.TurnRequested):
            await self._turn_requested(entry_id, event)
        elif isinstance(event, ev.SegmentPlayed) and not event.cleared:
            await self._segment_played(entry_id, event)
        elif isinstance(event, ev.BargeIn) and not event.filler_only:  # a filler cut: no reply
            await self._barge_in(entry_id, event)
        elif isinstance(event, ev.FalseInterrupt) and event.turn_id >= 0:
            await self._false_interrupt(event)
        elif isinstance(event, ev.Dtmf):
            await self._dtmf(entry_id, event)
        elif isinstance(event, ev.ToolResult):
            await self._tool_result(event)
        elif isinstance(event, ev.CallIntent) and event.kind == "transfer":
            self._call["transfer_target"] = event.target or None
        elif isinstance(event, ev.CallEnded):
            self._call.update(
                status="completed",
                end_reason=event.reason[:64],  # the full reason stays in call_events
                ended_at=ts(event.at),
                duration_s=event.duration_s,
                recorded_at=None,  # now(), see _update_call
            )

    async def finish(self) -> None:
        """Write what the batch derived that is still pending, in one statement."""
        writes = self.turns.take()
        if self._lines:
            writes.append(Write(INSERT_LINES, _columns("l", self.call_sid, self._lines)))
        if self._usage:
            writes.append(Write(INSERT_USAGE, _columns("u", self.call_sid, self._usage)))
        if self._call or self._providers:
            writes.append(_update_call(self.call_sid, self._call, self._providers))
        await execute(self.session, writes)
        self.memory.providers_written(set(self._providers))

    # ---- per event type ------------------------------------------------------------------
    def _usage_row(self, entry_id: str, event: ev.Usage) -> None:
        self._usage.append(
            (
                event.tenant_id or None,
                entry_id,
                event.provider,
                event.metric,
                Decimal(str(event.quantity)),
                ts(event.at),
            )
        )
        column = PROVIDER_COLUMN_BY_METRIC.get(event.metric)
        if column is not None and column not in self.memory.providers_set:
            self._providers.setdefault(column, event.provider)  # the first one sets it

    def _line(
        self,
        entry_id: str,
        turn_id: int,
        role: str,
        text: str,
        at: float,
        start_ms: int | None,
        end_ms: int | None,
        kind: str = "speech",
    ) -> None:
        self._lines.append((entry_id, turn_id, role, text, ts(at), start_ms, end_ms, kind))

    async def _turn_requested(self, entry_id: str, event: ev.TurnRequested) -> None:
        """The turn's caller text and audio span, and its caller transcript line. A system cue
        (the answering machine's beep) is no caller speech: no line. Without transcripts (voice
        agent pipelines) the line starts and ends when the turn was requested."""
        if event.source == "system":
            return
        self.turns.set(event.turn_id, {"caller_text": event.text})
        span = await self.memory.caller_span(self.session)
        if span is None:
            at_ms = await self.offset_ms(event.at)
            start, end = at_ms, at_ms
        else:
            self.turns.span(event.turn_id, *span)
            started = await self.memory.stream_start_before(self.session, event.at)
            base = 0 if started is None else await self.offset_ms(started.timestamp()) or 0
            start, end = base + span[0], base + span[1]
        await self.turns.write_now(event.turn_id)  # the row exists from here on, as it always did
        self._line(entry_id, event.turn_id, "caller", event.text, event.at, start, end)

    async def _segment_played(self, entry_id: str, event: ev.SegmentPlayed) -> None:
        sent = await self.memory.segment_sent(self.session, event.mark)
        if sent is None:
            return
        end_ms = await self.offset_ms(event.at)
        audio_ms = sent.audio_bytes // ULAW_BYTES_PER_MS
        start_ms = None if end_ms is None else max(end_ms - audio_ms, 0)
        kind = "filler" if sent.filler else "speech"
        self._line(entry_id, event.turn_id, "agent", sent.text, event.at, start_ms, end_ms, kind)
        if not sent.filler:  # the turn's heard text is the reply's
            await self.turns.append(event.turn_id, "heard_text", sent.text)

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
            .on_conflict_do_update(  # a real barge-in after an undone one on the same turn
                index_elements=["call_sid", "turn_id"],
                set_={
                    "entry_id": entry_id,
                    "at": ts(event.trigger_at),
                    "offset_ms": await self.offset_ms(event.trigger_at),
                    "undone": False,
                },
                where=BargeInRecord.undone.is_(True),
            )
        )
        self.turns.set(event.turn_id, {"barged_in": True, "heard_text": event.heard_text})

    async def _false_interrupt(self, event: ev.FalseInterrupt) -> None:
        """Media undid the barge-in on the turn (only "mhm", or a cough): the reply was not
        interrupted after all (its cut sentences were spoken again). The turn is not
        `barged_in`; it counts one more `false_interrupts`; its barge-in row is `undone`."""
        self.turns.set(event.turn_id, {"barged_in": False})
        await self.session.execute(
            sql_text(
                "INSERT INTO turns (call_sid, turn_id, caller_text, false_interrupts) "
                "VALUES (:sid, :turn, '', 1) ON CONFLICT (call_sid, turn_id) DO UPDATE "
                "SET false_interrupts = turns.false_interrupts + 1"
            ),
            {"sid": self.call_sid, "turn": event.turn_id},
        )
        await self.session.execute(
            update(BargeInRecord)
            .where(BargeInRecord.call_sid == self.call_sid)
            .where(BargeInRecord.turn_id == event.turn_id)
            .values(undone=True)
        )

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
        requested = await self.memory.tool_requested(self.session, event.tool_call_id)
        duration_ms = None
        arguments: dict[str, Any] = {}
        if requested is not None:
            duration_ms = round((event.at - requested.at) * 1000, 1)
            arguments = _arguments(requested.arguments)
        error = None if event.ok else event.content
        row = insert(ToolInvocation).values(
            tool_call_id=event.tool_call_id,
            call_sid=self.call_sid,
            tenant_id=event.tenant_id or None,
            name=event.name,
            arguments=arguments,
            ok=False,
            result=event.content,
            duration_ms=duration_ms,
            error=f"no result within the brain's timeout: {event.content}",
        )
        if event.by == "brain-timeout":  # never overwrite what the tools service stored
            await self.session.execute(row.on_conflict_do_nothing(index_elements=["tool_call_id"]))
            return
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


def _arguments(raw: str) -> dict[str, Any]:
    try:
        parsed = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {"_raw": raw}
    return parsed if isinstance(parsed, dict) else {"_raw": raw}
