"""Call records: calls, their raw event log, transcript, turns with latency, tool invocations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base


class Call(Base):
    """One phone call, inbound or outbound."""

    __tablename__ = "calls"
    call_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    from_number: Mapped[str] = mapped_column(String(64), default="")
    to_number: Mapped[str] = mapped_column(String(64), default="")
    direction: Mapped[str] = mapped_column(String(16), default="inbound")
    pipeline: Mapped[str] = mapped_column(String(32), default="cascade")
    status: Mapped[str] = mapped_column(String(16), default="in-progress")
    end_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Double, nullable=True)
    last_entry_id: Mapped[str] = mapped_column(String(32), default="0-0")


class CallEvent(Base):
    """Every entry of a call's log, stored verbatim (idempotent on the stream entry id)."""

    __tablename__ = "call_events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    call_sid: Mapped[str] = mapped_column(ForeignKey("calls.call_sid", ondelete="CASCADE"))
    entry_id: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(48), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    __table_args__ = (UniqueConstraint("call_sid", "entry_id"),)


class TranscriptLine(Base):
    """What was said: caller lines (final transcripts) and agent lines (only audio played)."""

    __tablename__ = "transcript_lines"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    call_sid: Mapped[str] = mapped_column(ForeignKey("calls.call_sid", ondelete="CASCADE"))
    entry_id: Mapped[str] = mapped_column(String(32))
    turn_id: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (UniqueConstraint("call_sid", "entry_id"),)


class Turn(Base):
    """One caller turn and the agent's answer, with its latency breakdown (wall clock)."""

    __tablename__ = "turns"
    call_sid: Mapped[str] = mapped_column(
        ForeignKey("calls.call_sid", ondelete="CASCADE"), primary_key=True
    )
    turn_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    caller_text: Mapped[str] = mapped_column(Text, default="")
    speech_end_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stt_final_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    llm_request_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    llm_first_token_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_speakable_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    tts_first_byte_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_audio_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ToolInvocation(Base):
    """A function the agent called; unique per tool call id (a retry returns the first result)."""

    __tablename__ = "tool_invocations"
    tool_call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), index=True)
    tenant_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    name: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSONB)
    ok: Mapped[bool] = mapped_column(Boolean)
    result: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
