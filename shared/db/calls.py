"""Call records: calls, their raw event log, transcript, turns with latency, tool invocations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
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
    transfer_target: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stt_provider: Mapped[str | None] = mapped_column(String(64), nullable=True)
    llm_provider: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tts_provider: Mapped[str | None] = mapped_column(String(64), nullable=True)
    recorded_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, doc="When call.ended was durably stored."
    )
    postcall_done_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, doc="When cost, analysis and webhooks were done."
    )
    recording_key: Mapped[str | None] = mapped_column(
        String(300), nullable=True, doc="The recording's key in the recordings store."
    )
    recording_duration_s: Mapped[float | None] = mapped_column(Double, nullable=True)
    recording_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    recording_purged_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, doc="When retention deleted the recording."
    )
    __table_args__ = (
        Index(
            "ix_calls_recording_due",
            "ended_at",
            postgresql_where=text("recording_key IS NOT NULL"),
        ),
    )


class CallEvent(Base):
    """Every entry of a call's log, stored verbatim (idempotent on the stream entry id).

    Partitioned by month on `at` (migration 0009, shared/db/partitions.py): the partition key
    is part of every unique key, and `at` is the entry's own clock, so a redelivered entry
    still conflicts with its first copy."""

    __tablename__ = "call_events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    call_sid: Mapped[str] = mapped_column(ForeignKey("calls.call_sid", ondelete="CASCADE"))
    entry_id: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(48), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    __table_args__ = (
        UniqueConstraint("call_sid", "entry_id", "at"),
        {"postgresql_partition_by": "RANGE (at)"},
    )


class TranscriptLine(Base):
    """What was said: caller lines (final transcripts) and agent lines (only audio played).

    Partitioned by month on `at`, like `call_events`."""

    __tablename__ = "transcript_lines"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    call_sid: Mapped[str] = mapped_column(ForeignKey("calls.call_sid", ondelete="CASCADE"))
    entry_id: Mapped[str] = mapped_column(String(32))
    turn_id: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    start_ms: Mapped[int | None] = mapped_column(Integer, nullable=True, doc="Since call start.")
    end_ms: Mapped[int | None] = mapped_column(Integer, nullable=True, doc="Since call start.")
    kind: Mapped[str] = mapped_column(
        String(16), default="speech", server_default="speech", doc="speech | filler (issue 17)"
    )
    tsv: Mapped[Any] = mapped_column(
        TSVECTOR, Computed("to_tsvector('english', text)", persisted=True)
    )
    __table_args__ = (
        UniqueConstraint("call_sid", "entry_id", "at"),
        Index("ix_transcript_lines_tsv", "tsv", postgresql_using="gin"),
        {"postgresql_partition_by": "RANGE (at)"},
    )


class Turn(Base):
    """One caller turn and the agent's answer, with its latency breakdown (wall clock)."""

    __tablename__ = "turns"
    call_sid: Mapped[str] = mapped_column(
        ForeignKey("calls.call_sid", ondelete="CASCADE"), primary_key=True
    )
    turn_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    caller_text: Mapped[str] = mapped_column(Text, default="")
    caller_start_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    caller_end_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    agent_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    heard_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    barged_in: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    false_interrupts: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", doc="Interruptions undone (a 'mhm', a cough)."
    )
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
    duration_ms: Mapped[float | None] = mapped_column(Double, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DtmfPress(Base):
    """A key the caller pressed."""

    __tablename__ = "call_dtmf"
    call_sid: Mapped[str] = mapped_column(
        ForeignKey("calls.call_sid", ondelete="CASCADE"), primary_key=True
    )
    entry_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    digit: Mapped[str] = mapped_column(String(4))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    offset_ms: Mapped[int | None] = mapped_column(Integer, nullable=True, doc="Since call start.")


class BargeInRecord(Base):
    """The caller interrupted the agent's answer to a turn (audio was cleared)."""

    __tablename__ = "barge_ins"
    call_sid: Mapped[str] = mapped_column(
        ForeignKey("calls.call_sid", ondelete="CASCADE"), primary_key=True
    )
    turn_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    offset_ms: Mapped[int | None] = mapped_column(Integer, nullable=True, doc="Since call start.")
    undone: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default="false", doc="Found false and undone (issue 17)."
    )
