"""A finished call as stored in Postgres (for the demo, the CLI and tests)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import Call, CallEvent, TranscriptLine, Turn


class Line(BaseModel):
    """One line of the transcript."""

    role: str
    text: str
    at: datetime
    turn_id: int
    kind: str = "speech"  # or "filler" (issue 17)


class ToolLine(BaseModel):
    """A tool call and its result."""

    name: str
    arguments: str
    ok: bool
    result: str


class TurnLatency(BaseModel):
    """Milliseconds from the caller's end of speech to each stage of the answer."""

    turn_id: int
    caller_text: str
    stages_ms: dict[str, float]


class CallRecord(BaseModel):
    """Everything the database holds about one call."""

    call_sid: str
    tenant_id: str | None
    from_number: str
    to_number: str
    status: str
    end_reason: str | None
    duration_s: float | None
    lines: list[Line]
    tools: list[ToolLine]
    turns: list[TurnLatency]


async def load_call_record(session: AsyncSession, call_sid: str) -> CallRecord | None:
    """The stored record of `call_sid`, or None."""
    call = await session.get(Call, call_sid)
    if call is None:
        return None
    lines = (
        await session.scalars(
            select(TranscriptLine)
            .where(TranscriptLine.call_sid == call_sid)
            .order_by(TranscriptLine.at, TranscriptLine.id)
        )
    ).all()
    events = (
        await session.scalars(
            select(CallEvent)
            .where(
                CallEvent.call_sid == call_sid,
                CallEvent.type.in_(["tool.requested", "tool.result"]),
            )
            .order_by(CallEvent.id)
        )
    ).all()
    requested = {e.payload["tool_call_id"]: e.payload for e in events if e.type == "tool.requested"}
    tools = [
        ToolLine(
            name=str(e.payload["name"]),
            arguments=str(requested.get(e.payload["tool_call_id"], {}).get("arguments", "")),
            ok=bool(e.payload["ok"]),
            result=str(e.payload["content"]),
        )
        for e in events
        if e.type == "tool.result"
    ]
    turns = (
        await session.scalars(select(Turn).where(Turn.call_sid == call_sid).order_by(Turn.turn_id))
    ).all()
    return CallRecord(
        call_sid=call.call_sid,
        tenant_id=call.tenant_id,
        from_number=call.from_number,
        to_number=call.to_number,
        status=call.status,
        end_reason=call.end_reason,
        duration_s=call.duration_s,
        lines=[
            Line(role=x.role, text=x.text, at=x.at, turn_id=x.turn_id, kind=x.kind)
            for x in lines
        ],
        tools=tools,
        turns=[
            TurnLatency(turn_id=t.turn_id, caller_text=t.caller_text, stages_ms=_stages(t))
            for t in turns
            if t.turn_id > 0
        ],
    )


def _stages(turn: Turn) -> dict[str, float]:
    if turn.speech_end_at is None:
        return {}
    out: dict[str, float] = {}
    for name in (
        "stt_final",
        "llm_request",
        "llm_first_token",
        "first_speakable",
        "tts_first_byte",
        "first_audio_sent",
    ):
        value = getattr(turn, f"{name}_at")
        if value is not None:
            out[name] = round((value - turn.speech_end_at).total_seconds() * 1000, 1)
    return out
