"""A business and what it offers: tenants, numbers, assistant, services, resources, hours,
closures, knowledge, API keys and connected calendars."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, new_id


class Tenant(Base):
    """A business that uses FrontDesk, with its booking policy."""

    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(Text, default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    currency: Mapped[str] = mapped_column(String(3), default="GBP")
    min_notice_min: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    slot_step_min: Mapped[int] = mapped_column(Integer, default=15, server_default="15")
    horizon_days: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    policies: Mapped[str] = mapped_column(Text, default="", server_default="")
    recording_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    recording_disclosure: Mapped[str] = mapped_column(Text, default="", server_default="")
    recording_retention_days: Mapped[int] = mapped_column(
        Integer, default=30, server_default="30"
    )
    speech: Mapped[str] = mapped_column(
        String(16), default="vendor", server_default="vendor"
    )  # who hears and speaks its calls: 'vendor' or 'local' (issue 15, speech15)
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
    """How the agent of one tenant talks, and its limits."""

    __tablename__ = "assistant_settings"
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    greeting: Mapped[str] = mapped_column(Text, default="")
    prompt_template: Mapped[str | None] = mapped_column(Text, nullable=True)
    custom_prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    language: Mapped[str] = mapped_column(String(16), default="en")
    max_call_minutes: Mapped[int] = mapped_column(Integer, default=15, server_default="15")
    conversation: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default="{}"
    )  # ConversationKnobs: turn-taking and keys (unset = platform default)


class Service(Base):
    """Something the business sells (haircut, cleaning, table reservation)."""

    __tablename__ = "services"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    duration_min: Mapped[int] = mapped_column(Integer)
    price_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="GBP")
    buffer_min: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)


class Resource(Base):
    """Who or what a booking occupies: a staff member, a chair, a table (with capacity)."""

    __tablename__ = "resources"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="staff")
    capacity: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)


class ResourceService(Base):
    """Which services a resource performs."""

    __tablename__ = "resource_services"
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True
    )
    service_id: Mapped[str] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )


class OpeningHours(Base):
    """A weekly opening interval (local time) of the business, or of one resource."""

    __tablename__ = "opening_hours"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    resource_id: Mapped[int | None] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), nullable=True
    )
    weekday: Mapped[int] = mapped_column(SmallInteger)  # 0 = Monday
    opens: Mapped[time] = mapped_column(Time)
    closes: Mapped[time] = mapped_column(Time)


class Closure(Base):
    """Dates the business (or one resource) is closed, inclusive."""

    __tablename__ = "closures"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    resource_id: Mapped[int | None] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), nullable=True
    )
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")


class KnowledgeItem(Base):
    """A question the business has answered once (FAQ)."""

    __tablename__ = "knowledge_items"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)


class ApiKey(Base):
    """An admin API key, scoped to one tenant (only its SHA-256 is stored)."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="default")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CalendarConnection(Base):
    """An external calendar (Google or CalDAV) whose busy time blocks a resource's slots."""

    __tablename__ = "calendar_connections"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    resource_id: Mapped[int | None] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # google | caldav
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    timeout_ms: Mapped[int] = mapped_column(Integer, default=1500, server_default="1500")
