"""What derivations need to know about a call's log *before* the entry being derived.

A batch's raw rows are inserted in one statement, so when its entries are derived the later rows
of the same batch are already visible in `call_events`: looking facts up there (the last turn
requested, the latest stream start, a segment's `audio.segment_sent`) would see the future.
`LogMemory` instead advances in log order, one observed entry at a time (stored now or by an
earlier recorder alike), so it always describes the log strictly before the entry at hand. What
precedes the first entry it observed is read from Postgres once, limited to rows with a smaller
stream id; a follower that starts at the beginning of the log never needs to.

It also caches two durable facts: the call's start time, and the provider columns of `calls`
that a committed transaction has set (they are only ever set once, from NULL).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, cast, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from shared.bus.streams import stream_id
from shared.contract import events as ev
from shared.db.models import Call, CallEvent


def ts(epoch: float) -> datetime:
    """An aware UTC datetime from epoch seconds (what a timestamptz column stores)."""
    return datetime.fromtimestamp(epoch, UTC)


def stream_order(column: InstrumentedAttribute[str]) -> ColumnElement[Any]:
    """A stream-id text column as a comparable (ms, seq) row value."""
    return tuple_(
        cast(func.split_part(column, "-", 1), BigInteger),
        cast(func.split_part(column, "-", 2), BigInteger),
    )


def stream_key(entry_id: str) -> ColumnElement[Any]:
    """An entry id as a bound (ms, seq) row value, to compare with `stream_order`."""
    ms, seq = stream_id(entry_id)
    return tuple_(literal(ms, BigInteger), literal(seq, BigInteger))


@dataclass(frozen=True)
class Sent:
    """What a played segment's transcript line needs from its `audio.segment_sent`."""

    text: str
    audio_bytes: int
    filler: bool = False  # a filler ("One moment."), not the reply (issue 17)


@dataclass(frozen=True)
class Requested:
    """What a tool result needs from its `tool.requested`."""

    at: float
    arguments: str


class LogMemory:
    """Log facts of one call up to (not including) the entry being derived."""

    def __init__(self, call_sid: str, *, from_start: bool = False) -> None:
        self.call_sid = call_sid
        self._prefix_empty = from_start  # True: nothing precedes the first observed entry
        self._horizon: str | None = None  # the first entry observed
        self._stream_starts: list[datetime] = []
        self._sent: dict[str, Sent] = {}
        self._requested: dict[str, Requested] = {}
        self._prefix_streams: list[datetime] | None = None
        self._prefix_sent: dict[str, Sent | None] = {}
        self._prefix_requested: dict[str, Requested | None] = {}
        self._started_at: float | None = None
        self._span: tuple[int, int] | None = None  # caller audio since the last turn.requested
        self._prefix_span: tuple[int, int] | None = None
        self._prefix_span_read = from_start
        self.providers_set: set[str] = set()
        self._providers_pending: set[str] = set()

    # ---- advancing -----------------------------------------------------------------------
    def begin(self, entry_id: str) -> None:
        """A batch starts at `entry_id` (the horizon is the first one ever seen)."""
        if self._horizon is None:
            self._horizon = entry_id

    def observe(self, event: ev.Event) -> None:
        """The entry just derived (or already stored) is now part of the past."""
        if isinstance(event, ev.TurnRequested):
            self._span, self._prefix_span, self._prefix_span_read = None, None, True
        elif isinstance(event, ev.TranscriptFinal):
            self._span = _widen(self._span, (event.audio_start_ms, event.audio_end_ms))
        elif isinstance(event, ev.StreamStarted):
            self._stream_starts.append(ts(event.at))
        elif isinstance(event, ev.SegmentSent):
            self._sent.setdefault(event.mark, Sent(event.text, event.audio_bytes, event.filler))
        elif isinstance(event, ev.ToolRequested):
            self._requested.setdefault(event.tool_call_id, Requested(event.at, event.arguments))

    def providers_written(self, columns: set[str]) -> None:
        """These provider columns are set once the current transaction commits."""
        self._providers_pending |= columns

    def committed(self) -> None:
        """The current transaction committed: its provider columns are now durable facts."""
        self.providers_set |= self._providers_pending
        self._providers_pending = set()

    # ---- reading -------------------------------------------------------------------------
    async def started_at(self, session: AsyncSession) -> float | None:
        """The call's start (epoch seconds), once its row exists."""
        if self._started_at is None:
            started = await session.scalar(
                select(Call.started_at).where(Call.call_sid == self.call_sid)
            )
            if started is None:
                return None
            self._started_at = started.timestamp()
        return self._started_at

    async def caller_span(self, session: AsyncSession) -> tuple[int, int] | None:
        """The caller audio (stream ms) finalized since the last turn.requested: the span of
        the turn being requested now, whatever its id (agent-initiated turns such as a reprompt
        take ids too, so it is not always the last id + 1)."""
        if not self._prefix_span_read:
            self._prefix_span_read = True
            last_turn = (
                select(func.coalesce(func.max(CallEvent.id), 0))
                .where(*self._before(), CallEvent.type == "turn.requested")
                .scalar_subquery()
            )
            row = (
                await session.execute(
                    select(
                        func.min(CallEvent.payload["audio_start_ms"].as_integer()),
                        func.max(CallEvent.payload["audio_end_ms"].as_integer()),
                    ).where(
                        *self._before(),
                        CallEvent.type == "transcript.final",
                        CallEvent.id > last_turn,
                    )
                )
            ).one()
            if row[0] is not None and row[1] is not None:
                self._prefix_span = (int(row[0]), int(row[1]))
        if self._prefix_span is None:
            return self._span
        return _widen(self._prefix_span, self._span) if self._span else self._prefix_span

    async def stream_start_before(self, session: AsyncSession, at: float) -> datetime | None:
        """The latest media stream start so far at or before wall-clock `at`."""
        if self._prefix_streams is None:
            self._prefix_streams = []
            if not self._prefix_empty:
                rows = await session.scalars(
                    select(CallEvent.at)
                    .where(*self._before(), CallEvent.type == "stream.started")
                    .order_by(CallEvent.id)
                )
                self._prefix_streams = list(rows)
        limit = ts(at)
        for started in reversed(self._prefix_streams + self._stream_starts):
            if started <= limit:
                return started
        return None

    async def segment_sent(self, session: AsyncSession, mark: str) -> Sent | None:
        """The first `audio.segment_sent` so far with this mark."""
        if mark not in self._prefix_sent:
            found = None
            if not self._prefix_empty:
                payload = await self._first_payload(session, "audio.segment_sent", "mark", mark)
                if payload is not None:
                    found = Sent(
                        str(payload["text"]),
                        int(payload.get("audio_bytes", 0)),
                        bool(payload.get("filler", False)),
                    )
            self._prefix_sent[mark] = found
        return self._prefix_sent[mark] or self._sent.get(mark)

    async def tool_requested(self, session: AsyncSession, tool_call_id: str) -> Requested | None:
        """The first `tool.requested` so far with this tool call id."""
        if tool_call_id not in self._prefix_requested:
            found = None
            if not self._prefix_empty:
                payload = await self._first_payload(
                    session, "tool.requested", "tool_call_id", tool_call_id
                )
                if payload is not None:
                    found = Requested(float(payload["at"]), str(payload.get("arguments", "")))
            self._prefix_requested[tool_call_id] = found
        return self._prefix_requested[tool_call_id] or self._requested.get(tool_call_id)

    # ---- prefix lookups ------------------------------------------------------------------
    def _before(self) -> list[ColumnElement[bool]]:
        """Stored rows of this call that precede the first observed entry."""
        assert self._horizon is not None, "begin() a batch before reading"
        return [
            CallEvent.call_sid == self.call_sid,
            stream_order(CallEvent.entry_id) < stream_key(self._horizon),
        ]

    async def _first_payload(
        self, session: AsyncSession, event_type: str, key: str, value: str
    ) -> dict[str, Any] | None:
        payload: dict[str, Any] | None = await session.scalar(
            select(CallEvent.payload)
            .where(
                *self._before(),
                CallEvent.type == event_type,
                CallEvent.payload[key].astext == value,
            )
            .order_by(CallEvent.id)
            .limit(1)
        )
        return payload


def _widen(span: tuple[int, int] | None, more: tuple[int, int]) -> tuple[int, int]:
    """The smallest span covering both."""
    if span is None:
        return more
    return min(span[0], more[0]), max(span[1], more[1])
