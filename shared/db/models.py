"""Tables owned by Alembic (``shared/migrations``). Money is in minor units (pence, cents)."""

from __future__ import annotations

import uuid
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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def _uuid() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    """Declarative base of every FrontDesk table."""


class Tenant(Base):
    """A business that uses FrontDesk."""

    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uuid)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(Text, default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    currency: Mapped[str] = mapped_column(String(3), default="GBP")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PhoneNumber(Base):
    """An E.164 number routed to a tenant and a pipeline."""

    __tablename__ = "phone_numbers"
    e164: Mapped[str] = mapped_column(String(20), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    pipeline: Mapped[str] = mapped_column(String(32), default="cascade")
    voice: Mapped[str] = mapped_column(String(64), default="")
    transfer_number: Mapped[str | None] = mapped_column(String(20), nullable=True)


class AssistantSettings(Base):
    """How the agent of one tenant talks."""

    __tablename__ = "assistant_settings"
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    greeting: Mapped[str] = mapped_column(Text, default="")
    custom_prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    language: Mapped[str] = mapped_column(String(16), default="en")


class Service(Base):
    """Something the business sells (haircut, cleaning, table for two)."""

    __tablename__ = "services"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uuid)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    duration_min: Mapped[int] = mapped_column(Integer)
    price_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="GBP")
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)


class KnowledgeItem(Base):
    """A question the business has answered once (FAQ)."""

    __tablename__ = "knowledge_items"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uuid)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)


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
