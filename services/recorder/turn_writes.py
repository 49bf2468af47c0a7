"""Upserts of `turns` rows, coalesced within a batch: one statement per turn where the result is
provably the row the entry-by-entry upserts would have left.

Per column, the operations a batch makes on a turn compose like this (x: the stored value):
- set v, then set w            -> set w
- set v, then append t         -> set btrim(v || ' ' || t), computed here (btrim trims spaces)
- append ..., then set v       -> set v
- append t1, then append t2    -> append "t1 t2", only if both are non-empty and have no
  leading/trailing spaces (then btrim(btrim(x || ' ' || t1) || ' ' || t2) equals
  btrim(x || ' ' || 't1 t2'), and an insert of "t1 t2" equals the insert of t1 then the append
  of t2); otherwise the pending upsert is written first and a new one started
- caller span (least/greatest) -> the min of the starts and the max of the ends
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.recorder.writes import Write, execute

APPEND_COLUMNS = ("agent_text", "heard_text")
SET_COLUMNS = frozenset(
    {
        "caller_text",
        "agent_text",
        "heard_text",
        "barged_in",
        "speech_end_at",
        "stt_final_at",
        "llm_request_at",
        "llm_first_token_at",
        "first_speakable_at",
        "tts_first_byte_at",
        "first_audio_sent_at",
    }
)
"""Columns written with a plain value (the only names that ever reach the SQL text)."""


def _clean(text: str) -> bool:
    return bool(text) and text == text.strip(" ")


@dataclass
class _Pending:
    sets: dict[str, Any] = field(default_factory=dict)
    appends: dict[str, list[str]] = field(default_factory=dict)
    span: tuple[int, int] | None = None

    def empty(self) -> bool:
        return not (self.sets or self.appends or self.span)


class TurnWrites:
    """Pending upserts of one call's turns: one statement per turn, taken at the batch's end."""

    def __init__(self, session: AsyncSession, call_sid: str) -> None:
        self.session = session
        self.call_sid = call_sid
        self._pending: dict[int, _Pending] = {}

    def set(self, turn_id: int, values: dict[str, Any]) -> None:
        """Upsert plain column values."""
        op = self._pending.setdefault(turn_id, _Pending())
        for column, value in values.items():
            op.appends.pop(column, None)
            op.sets[column] = value

    async def append(self, turn_id: int, column: str, text: str) -> None:
        """`column = btrim(column || ' ' || text)`, or `text` for a new row."""
        assert column in APPEND_COLUMNS
        op = self._pending.setdefault(turn_id, _Pending())
        if column in op.sets:
            op.sets[column] = (str(op.sets[column]) + " " + text).strip(" ")
            return
        texts = op.appends.get(column)
        if texts is None:
            op.appends[column] = [text]
            return
        if _clean(text) and all(_clean(t) for t in texts):
            texts.append(text)
            return
        await execute(self.session, [self._write(turn_id, self._pending.pop(turn_id))])
        self._pending[turn_id] = _Pending(appends={column: [text]})

    def span(self, turn_id: int, start_ms: int, end_ms: int) -> None:
        """`caller_start_ms = least(...)`, `caller_end_ms = greatest(...)`."""
        op = self._pending.setdefault(turn_id, _Pending())
        if op.span is not None:
            start_ms, end_ms = min(op.span[0], start_ms), max(op.span[1], end_ms)
        op.span = (start_ms, end_ms)

    async def write_now(self, turn_id: int) -> None:
        """Write the turn's pending upsert now (the row exists from here on, so later appends
        to it are updates, as when each entry is stored on its own)."""
        op = self._pending.pop(turn_id, None) or _Pending()
        await execute(self.session, [self._write(turn_id, op)])

    def take(self) -> list[Write]:
        """The pending upserts (in turn order), to be executed by the caller."""
        pending, self._pending = self._pending, {}
        return [
            self._write(turn_id, pending[turn_id], prefix=f"t{n}_")
            for n, turn_id in enumerate(sorted(pending))
            if not pending[turn_id].empty()
        ]

    def _write(
        self, turn_id: int, op: _Pending, *, returning: bool = False, prefix: str = ""
    ) -> Write:
        values: dict[str, Any] = {"call_sid": self.call_sid, "turn_id": turn_id, **op.sets}
        for column, texts in op.appends.items():
            values[column] = " ".join(texts)
        if op.span is not None:
            values["caller_start_ms"], values["caller_end_ms"] = op.span
        shape = (tuple(sorted(op.sets)), tuple(sorted(op.appends)), op.span is not None)
        return Write(_upsert(*shape, returning, prefix), {prefix + k: v for k, v in values.items()})


@functools.lru_cache(maxsize=1024)
def _upsert(
    sets: tuple[str, ...], appends: tuple[str, ...], span: bool, returning: bool, prefix: str
) -> str:
    """The upsert of one shape of pending writes (its text is built once per shape)."""
    assert set(sets) <= SET_COLUMNS and set(appends) <= set(APPEND_COLUMNS)
    columns = [*sets, *appends, *(("caller_start_ms", "caller_end_ms") if span else ())]
    values = [f":{prefix}{c}" for c in columns]
    if "caller_text" not in columns:  # its default is client-side (the model's `default=""`)
        columns.append("caller_text")
        values.append("''")
    update = [f"{c} = EXCLUDED.{c}" for c in sets]
    update += [f"{c} = btrim(turns.{c} || ' ' || EXCLUDED.{c})" for c in appends]
    if span:
        update += [
            "caller_start_ms = least(turns.caller_start_ms, EXCLUDED.caller_start_ms)",
            "caller_end_ms = greatest(turns.caller_end_ms, EXCLUDED.caller_end_ms)",
        ]
    return (
        f"INSERT INTO turns (call_sid, turn_id{''.join(', ' + c for c in columns)}) "
        f"VALUES (:{prefix}call_sid, :{prefix}turn_id{''.join(', ' + v for v in values)}) "
        "ON CONFLICT (call_sid, turn_id) DO UPDATE SET "
        + (", ".join(update) or "turn_id = EXCLUDED.turn_id")
        + (" RETURNING caller_start_ms, caller_end_ms" if returning else "")
    )
