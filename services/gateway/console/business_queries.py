"""What the bookings and business pages read: bookings per staff member per day, messages,
and the tenant's setup (hours, services, staff, numbers, prompt, FAQ)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import (
    AssistantSettings,
    Booking,
    Closure,
    Customer,
    KnowledgeItem,
    Message,
    OpeningHours,
    PhoneNumber,
    Resource,
    Service,
    Tenant,
)


@dataclass(frozen=True)
class BookingEntry:
    """A booking as a calendar shows it (times in the tenant's zone)."""

    id: str
    starts: datetime
    ends: datetime
    customer: str
    phone: str
    service: str
    status: str
    call_sid: str | None


@dataclass
class StaffCalendar:
    """One staff member's bookings, by local day."""

    name: str
    days: dict[date, list[BookingEntry]] = field(default_factory=lambda: defaultdict(list))


async def tenants_of(session: AsyncSession, tenant_id: str | None) -> list[Tenant]:
    """The viewer's tenant, or every tenant for the operator (by name)."""
    query = select(Tenant).order_by(Tenant.name)
    if tenant_id is not None:
        query = query.where(Tenant.id == tenant_id)
    return list((await session.scalars(query)).all())


async def calendars(
    session: AsyncSession, tenant: Tenant, first: date, days: int
) -> list[StaffCalendar]:
    """Every active staff member of the tenant with the bookings starting on the `days` local
    days from `first` (cancelled and rescheduled ones too, marked by status)."""
    zone = ZoneInfo(tenant.timezone or "UTC")
    start = datetime.combine(first, time.min, tzinfo=zone)
    end = datetime.combine(first + timedelta(days=days), time.min, tzinfo=zone)
    staff = (
        await session.scalars(
            select(Resource)
            .where(Resource.tenant_id == tenant.id, Resource.active.is_(True))
            .order_by(Resource.name, Resource.id)
        )
    ).all()
    by_id = {member.id: StaffCalendar(member.name) for member in staff}
    rows = await session.execute(
        select(Booking, Customer, Service)
        .join(Customer, Customer.id == Booking.customer_id)
        .join(Service, Service.id == Booking.service_id)
        .where(Booking.tenant_id == tenant.id, Booking.starts_at >= start, Booking.starts_at < end)
        .order_by(Booking.starts_at, Booking.id)
    )
    for booking, customer, service in rows:
        calendar = by_id.get(booking.resource_id)
        if calendar is None:
            continue
        starts = booking.starts_at.astimezone(zone)
        calendar.days[starts.date()].append(
            BookingEntry(
                booking.id,
                starts,
                booking.ends_at.astimezone(zone),
                customer.name or customer.phone,
                customer.phone,
                service.name,
                booking.status,
                booking.call_sid,
            )
        )
    return list(by_id.values())


async def messages(session: AsyncSession, tenant_id: str | None, limit: int = 50) -> list[Message]:
    """The newest messages callers left."""
    query = select(Message).order_by(Message.created_at.desc(), Message.id).limit(limit)
    if tenant_id is not None:
        query = query.where(Message.tenant_id == tenant_id)
    return list((await session.scalars(query)).all())


@dataclass(frozen=True)
class BusinessSetup:
    """Everything the business page shows about one tenant."""

    tenant: Tenant
    hours: list[OpeningHours]
    closures: list[Closure]
    services: list[Service]
    staff: list[Resource]
    numbers: list[PhoneNumber]
    assistant: AssistantSettings | None
    faq: list[KnowledgeItem]


async def business_setup(session: AsyncSession, tenant: Tenant) -> BusinessSetup:
    """The tenant's hours, closures, services, staff, numbers, assistant settings and FAQ."""
    tid = tenant.id
    hours = await session.scalars(
        select(OpeningHours)
        .where(OpeningHours.tenant_id == tid, OpeningHours.resource_id.is_(None))
        .order_by(OpeningHours.weekday, OpeningHours.opens)
    )
    closures = await session.scalars(
        select(Closure).where(Closure.tenant_id == tid).order_by(Closure.starts_on)
    )
    services = await session.scalars(
        select(Service).where(Service.tenant_id == tid).order_by(Service.name)
    )
    staff = await session.scalars(
        select(Resource).where(Resource.tenant_id == tid).order_by(Resource.name)
    )
    numbers = await session.scalars(
        select(PhoneNumber).where(PhoneNumber.tenant_id == tid).order_by(PhoneNumber.e164)
    )
    faq = await session.scalars(
        select(KnowledgeItem).where(KnowledgeItem.tenant_id == tid).order_by(KnowledgeItem.id)
    )
    return BusinessSetup(
        tenant,
        list(hours.all()),
        list(closures.all()),
        list(services.all()),
        list(staff.all()),
        list(numbers.all()),
        await session.get(AssistantSettings, tid),
        list(faq.all()),
    )
