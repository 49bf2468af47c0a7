"""Writes of the booking tools: customers, bookings, moves, cancellations, messages.

Double booking is prevented by Postgres alone (the `bookings_no_overlap` exclusion
constraint): every insert runs in a savepoint, and a violation of that constraint means someone
else took the time first, which the caller learns as `None` while the outer transaction stays
usable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import Booking, Customer, Message, Resource, Service, new_id

OVERLAP_CONSTRAINT = "bookings_no_overlap"
EXCLUSION_VIOLATION = "23P01"
SHORT_ID_LEN = 6


@dataclass(frozen=True)
class NewBooking:
    """What a booking needs besides its id."""

    tenant_id: str
    customer_id: str
    service: Service
    resource_id: int
    start: datetime  # UTC
    party_size: int = 1
    notes: str = ""
    call_sid: str | None = None


@dataclass(frozen=True)
class CallerBooking:
    """One of a caller's bookings with what the agent says about it."""

    booking: Booking
    service: Service
    resource: Resource

    @property
    def short_id(self) -> str:
        """The reference the agent reads out."""
        return short_id(self.booking.id)


def short_id(booking_id: str) -> str:
    """First characters of a booking id, enough to tell a caller's bookings apart."""
    return booking_id[:SHORT_ID_LEN].upper()


def is_overlap(exc: DBAPIError) -> bool:
    """Whether a database error is the no-double-booking constraint firing."""
    orig = exc.orig
    causes = [orig, getattr(orig, "__cause__", None)]
    for cause in causes:
        if cause is None:
            continue
        code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        name = getattr(cause, "constraint_name", None)
        if code == EXCLUSION_VIOLATION and name in (None, OVERLAP_CONSTRAINT):
            return True
    return OVERLAP_CONSTRAINT in str(orig)


async def upsert_customer(session: AsyncSession, tenant_id: str, phone: str, name: str) -> str:
    """The id of the tenant's customer with this phone, created (or given a name) if needed."""
    created = await session.scalar(
        insert(Customer)
        .values(tenant_id=tenant_id, phone=phone, name=name)
        .on_conflict_do_nothing(index_elements=["tenant_id", "phone"])
        .returning(Customer.id)
    )
    if created is not None:
        return str(created)
    customer_id, known_name = (
        await session.execute(
            select(Customer.id, Customer.name).where(
                Customer.tenant_id == tenant_id, Customer.phone == phone
            )
        )
    ).one()
    if name and name != known_name:
        await session.execute(update(Customer).where(Customer.id == customer_id).values(name=name))
    return str(customer_id)


def _values(new: NewBooking) -> dict[str, object]:
    end = new.start + timedelta(minutes=new.service.duration_min)
    return {
        "tenant_id": new.tenant_id,
        "customer_id": new.customer_id,
        "service_id": new.service.id,
        "resource_id": new.resource_id,
        "starts_at": new.start,
        "ends_at": end,
        "blocked_until": end + timedelta(minutes=new.service.buffer_min),
        "party_size": new.party_size,
        "status": "confirmed",
        "notes": new.notes,
        "call_sid": new.call_sid,
        "external_refs": {},
    }


async def insert_booking(session: AsyncSession, new: NewBooking) -> str | None:
    """Insert a confirmed booking; None when the time was taken (the constraint fired)."""
    try:
        async with session.begin_nested():
            booking_id = await session.scalar(
                insert(Booking).values(id=new_id(), **_values(new)).returning(Booking.id)
            )
    except DBAPIError as exc:
        if not is_overlap(exc):
            raise
        return None
    return booking_id


async def move_booking(session: AsyncSession, old_id: str, new: NewBooking) -> str | None:
    """Atomically mark `old_id` rescheduled and insert its replacement; None when the new time
    was taken (nothing changes) or the old booking is no longer confirmed."""
    try:
        async with session.begin_nested():
            moved = await session.execute(
                update(Booking)
                .where(Booking.id == old_id, Booking.status == "confirmed")
                .values(status="rescheduled")
                .returning(Booking.id)
            )
            if moved.first() is None:
                raise _Gone()
            booking_id = await session.scalar(
                insert(Booking).values(id=new_id(), **_values(new)).returning(Booking.id)
            )
    except _Gone:
        return None
    except DBAPIError as exc:
        if not is_overlap(exc):
            raise
        return None
    return booking_id


async def cancel_booking(session: AsyncSession, booking_id: str) -> bool:
    """Cancel a confirmed booking; False if it was not confirmed any more."""
    cancelled = await session.execute(
        update(Booking)
        .where(Booking.id == booking_id, Booking.status == "confirmed")
        .values(status="cancelled")
        .returning(Booking.id)
    )
    return cancelled.first() is not None


def _confirmed_of_caller(tenant_id: str, phone: str) -> Select[Booking, Service, Resource]:
    """Confirmed bookings (with service and resource) of the customer with this phone."""
    return (
        select(Booking, Service, Resource)
        .join(Customer, Customer.id == Booking.customer_id)
        .join(Service, Service.id == Booking.service_id)
        .join(Resource, Resource.id == Booking.resource_id)
        .where(
            Booking.tenant_id == tenant_id,
            Customer.tenant_id == tenant_id,
            Customer.phone == phone,
            Booking.status == "confirmed",
        )
    )


async def caller_bookings(
    session: AsyncSession, tenant_id: str, phone: str, now: datetime
) -> list[CallerBooking]:
    """Upcoming confirmed bookings of the customer with this phone number, soonest first."""
    rows = await session.execute(
        _confirmed_of_caller(tenant_id, phone)
        .where(Booking.starts_at > now)
        .order_by(Booking.starts_at)
    )
    return [CallerBooking(b, s, r) for b, s, r in rows.all()]


async def same_booking(
    session: AsyncSession,
    tenant_id: str,
    phone: str,
    service_id: str,
    start: datetime,
    resource_ids: list[int],
) -> CallerBooking | None:
    """The customer's confirmed booking of this service at exactly this start with one of these
    resources (the same booking asked for again, e.g. under a new tool call id), if any."""
    row = (
        await session.execute(
            _confirmed_of_caller(tenant_id, phone)
            .where(
                Booking.service_id == service_id,
                Booking.starts_at == start,
                Booking.resource_id.in_(resource_ids),
            )
            .order_by(Booking.created_at)
            .limit(1)
        )
    ).first()
    return CallerBooking(row[0], row[1], row[2]) if row is not None else None


async def save_message(
    session: AsyncSession, tenant_id: str, call_sid: str, phone: str, name: str, body: str
) -> str:
    """Store a caller's message; returns its id."""
    message_id = new_id()
    await session.execute(
        insert(Message).values(
            id=message_id,
            tenant_id=tenant_id,
            call_sid=call_sid or None,
            caller_phone=phone,
            caller_name=name,
            body=body,
        )
    )
    return message_id


class _Gone(Exception):
    """The booking being moved changed under us (rolls the savepoint back)."""
