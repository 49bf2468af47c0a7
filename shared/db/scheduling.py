"""What callers create: customers, bookings (never overlapping per resource), messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Computed,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import INT8RANGE, JSONB, TSTZRANGE, ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, new_id


class Customer(Base):
    """A caller the business knows, by phone number."""

    __tablename__ = "customers"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (UniqueConstraint("tenant_id", "phone"),)


class Booking(Base):
    """An appointment on one resource. Postgres refuses two confirmed bookings whose blocked
    ranges (start to end plus buffer) overlap on the same resource."""

    __tablename__ = "bookings"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"))
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    blocked_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    blocked: Mapped[Any] = mapped_column(
        TSTZRANGE, Computed("tstzrange(starts_at, blocked_until, '[)')", persisted=True)
    )
    # `resource_id =` as a range overlap, so the constraint needs only built-in GiST range
    # operators (no btree_gist, which embedded pgserver builds do not ship).
    resource_slot: Mapped[Any] = mapped_column(
        INT8RANGE, Computed("int8range(resource_id, resource_id, '[]')", persisted=True)
    )
    party_size: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    status: Mapped[str] = mapped_column(String(16), default="confirmed")
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    call_sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    external_refs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    __table_args__ = (
        ExcludeConstraint(
            ("resource_slot", "&&"),
            ("blocked", "&&"),
            name="bookings_no_overlap",
            using="gist",
            where="status = 'confirmed'",
        ),
    )


class Message(Base):
    """A message a caller left for the business."""

    __tablename__ = "messages"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    call_sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    caller_phone: Mapped[str] = mapped_column(String(20), default="")
    caller_name: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    read: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
