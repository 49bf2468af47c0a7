"""What a call consumed and cost, its post-call analysis, and the webhooks that report it.

Costs are in minor units of the price table's currency (pence, cents), kept as exact decimals:
a line is quantity x unit price, and a call's total is the sum of its lines.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, new_id

QUANTITY = Numeric(20, 6)
UNIT_PRICE = Numeric(24, 10)
AMOUNT = Numeric(24, 8)


class UsageRecord(Base):
    """A metered quantity (STT seconds, LLM tokens, TTS characters, telephony minutes).

    `source` makes it idempotent: the call-log entry id for usage events, `twilio-status` for
    telephony minutes, `analysis` for the post-call LLM pass.
    """

    __tablename__ = "usage_records"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), index=True)
    tenant_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    source: Mapped[str] = mapped_column(String(48))
    provider: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(48))
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (UniqueConstraint("call_sid", "source", "provider", "metric"),)


class CallCost(Base):
    """A call's total cost: the exact sum of its line items."""

    __tablename__ = "call_costs"
    call_sid: Mapped[str] = mapped_column(
        ForeignKey("calls.call_sid", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[Decimal] = mapped_column(AMOUNT)
    telephony_metered: Mapped[bool] = mapped_column(Boolean, default=False)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CostLineItem(Base):
    """One priced usage metric of a call: quantity x unit price = amount."""

    __tablename__ = "cost_line_items"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    call_sid: Mapped[str] = mapped_column(
        ForeignKey("call_costs.call_sid", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(48))
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    unit_price_minor: Mapped[Decimal] = mapped_column(UNIT_PRICE)
    amount_minor: Mapped[Decimal] = mapped_column(AMOUNT)
    currency: Mapped[str] = mapped_column(String(3))
    priced: Mapped[bool] = mapped_column(Boolean, default=True, doc="False: no price in table.")
    __table_args__ = (UniqueConstraint("call_sid", "provider", "metric"),)


class WebhookEndpoint(Base):
    """Where a tenant wants post-call events, and the secret that signs them."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookDelivery(Base):
    """One event for one endpoint, retried until delivered or dead-lettered (status failed)."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(48))
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[str] = mapped_column(String(32), index=True)
    call_sid: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0, doc="Attempts in this round.")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )


class WebhookAttempt(Base):
    """The delivery log: one row per HTTP attempt."""

    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    response_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[float] = mapped_column(Double)


class CallAnalysis(Base):
    """The post-call LLM pass: summary, success flag, the tenant's structured fields."""

    __tablename__ = "call_analysis"
    call_sid: Mapped[str] = mapped_column(
        ForeignKey("calls.call_sid", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16))  # done | failed | skipped
    summary: Mapped[str] = mapped_column(Text, default="")
    success: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    model: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TenantAnalysisSchema(Base):
    """The structured fields a tenant wants extracted from each call (a JSON schema)."""

    __tablename__ = "tenant_analysis_schemas"
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    json_schema: Mapped[dict[str, Any]] = mapped_column(JSONB)
    success_criteria: Mapped[str] = mapped_column(Text, default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
