"""Outbound calls a tenant asked for (e.g. book a table at a restaurant for a customer): the
request, its dialling attempts and the outcome the agent (or the telephone network) reported.

Lifecycle (`status`): queued -> dialing -> in_progress -> completed, with `retry_scheduled`
between attempts after busy / no-answer. `next_attempt_at` is when the dialler should look at
the row again (due to dial, or a dial lease that expired).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, new_id

OUTCOMES = (
    "confirmed",
    "alternative_offered",
    "declined",
    "voicemail_left",
    "no_answer",
    "busy",
    "failed",
)
"""What an outbound call achieved."""
STATUSES = ("queued", "dialing", "in_progress", "retry_scheduled", "completed")
"""Where an outbound request is in its lifecycle."""


class OutboundCallRequest(Base):
    """One outbound call job of a tenant, over all its attempts."""

    __tablename__ = "outbound_call_requests"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(48))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB)
    from_number: Mapped[str] = mapped_column(String(20), doc="The tenant number that calls.")
    to_number: Mapped[str] = mapped_column(String(20), doc="Who is called, E.164.")
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    attempts: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", doc="Calls placed so far."
    )
    max_attempts: Mapped[int] = mapped_column(Integer, doc="1 + retries allowed.")
    retry_delay_s: Mapped[float] = mapped_column(
        Double, doc="Wait before the first retry (doubles)."
    )
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    twilio_call_sids: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)),
        default=list,
        server_default="{}",
        doc="Every attempt's CallSid, in order.",
    )
    last_call_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(32), nullable=True, doc="AMD result.")
    outcome: Mapped[str | None] = mapped_column(String(24), nullable=True)
    outcome_details: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default="{}"
    )
    outcome_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_event_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    webhook_queued_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, doc="When outbound.completed was queued."
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    __table_args__ = (
        CheckConstraint(
            "status IN ({})".format(", ".join(f"'{s}'" for s in STATUSES)),
            name="ck_outbound_call_requests_status",
        ),
        CheckConstraint(
            "outcome IS NULL OR outcome IN ({})".format(", ".join(f"'{o}'" for o in OUTCOMES)),
            name="ck_outbound_call_requests_outcome",
        ),
        CheckConstraint(
            "attempts >= 0 AND max_attempts >= 1", name="ck_outbound_call_requests_attempts"
        ),
        Index("ix_outbound_call_requests_tenant_created", "tenant_id", "created_at"),
        Index("ix_outbound_call_requests_due", "status", "next_attempt_at"),
        Index("ix_outbound_call_requests_call_sids", "twilio_call_sids", postgresql_using="gin"),
    )
