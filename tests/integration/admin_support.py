"""Helpers for the admin API tests: tenants and keys written straight into Postgres, rows of
what callers create (customers, bookings, messages), and snapshots of rows to prove that a
refused request changed nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.base import Base
from shared.db.models import (
    ApiKey,
    Booking,
    Closure,
    Customer,
    KnowledgeItem,
    Message,
    OpeningHours,
    PhoneNumber,
    Resource,
    ResourceService,
    Service,
    Tenant,
)
from shared.tenancy import api_keys

Sessions = async_sessionmaker[AsyncSession]


@dataclass
class KeyedTenant:
    """A tenant created for a test, with a working API key."""

    id: str
    slug: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def unique_e164() -> str:
    """A fresh E.164 number in the UK drama range (+44 7700 900xxx style, 12 digits)."""
    return "+447" + str(uuid.uuid4().int % 10**9).zfill(9)


async def make_tenant(
    sessions: Sessions, label: str, *, timezone: str = "Europe/London"
) -> KeyedTenant:
    """A tenant with a unique slug and one API key."""
    slug = f"{label}-{uuid.uuid4().hex[:8]}"
    key = api_keys.generate()
    async with sessions() as session:
        tenant = Tenant(slug=slug, name=f"{label} ltd", timezone=timezone, currency="GBP")
        session.add(tenant)
        await session.flush()
        session.add(ApiKey(tenant_id=tenant.id, key_sha256=api_keys.hash_key(key), name="test"))
        await session.commit()
        return KeyedTenant(id=tenant.id, slug=slug, key=key)


@dataclass
class Ctx:
    """What one API test works with: Postgres, its own tenant, a client sending its key."""

    sessions: Sessions
    tenant: KeyedTenant
    api: httpx.AsyncClient


async def add_customer(sessions: Sessions, tenant_id: str, name: str) -> str:
    """Insert a customer with a fresh phone number and return its id."""
    async with sessions() as session:
        customer = Customer(tenant_id=tenant_id, phone=unique_e164(), name=name)
        session.add(customer)
        await session.commit()
        return customer.id


@dataclass
class Catalog:
    """One of each catalog and activity object of a tenant, inserted directly."""

    number: str
    service_id: str
    staff_id: int
    business_hours_id: str
    staff_hours_id: str
    closure_id: str
    knowledge_id: str
    customer_id: str
    booking_id: str
    message_id: str


async def add_booking(
    sessions: Sessions,
    tenant_id: str,
    *,
    customer_id: str,
    service_id: str,
    staff_id: int,
    starts_at: datetime,
    ends_at: datetime,
    status: str = "confirmed",
) -> str:
    """Insert a booking (blocked until it ends) and return its id."""
    async with sessions() as session:
        booking = Booking(
            tenant_id=tenant_id,
            customer_id=customer_id,
            service_id=service_id,
            resource_id=staff_id,
            starts_at=starts_at,
            ends_at=ends_at,
            blocked_until=ends_at,
            status=status,
        )
        session.add(booking)
        await session.commit()
        return booking.id


async def add_message(sessions: Sessions, tenant_id: str, body: str, *, read: bool = False) -> str:
    """Insert a message a caller left and return its id."""
    async with sessions() as session:
        message = Message(
            tenant_id=tenant_id, caller_phone=unique_e164(), caller_name="Sam", body=body, read=read
        )
        session.add(message)
        await session.commit()
        return message.id


async def make_catalog(sessions: Sessions, tenant_id: str) -> Catalog:
    """A number, service, staff (performing it), hours, closure, FAQ, booking and message."""
    async with sessions() as session:
        number = PhoneNumber(e164=unique_e164(), tenant_id=tenant_id, voice="v1")
        service = Service(tenant_id=tenant_id, name="Cut", duration_min=30, price_minor=2500)
        staff = Resource(tenant_id=tenant_id, name="Alex")
        knowledge = KnowledgeItem(tenant_id=tenant_id, question="Parking?", answer="Round back.")
        customer = Customer(tenant_id=tenant_id, phone=unique_e164(), name="Jo")
        session.add_all([number, service, staff, knowledge, customer])
        await session.flush()
        session.add(ResourceService(resource_id=staff.id, service_id=service.id))
        business_hours = OpeningHours(
            tenant_id=tenant_id, weekday=0, opens=time(9), closes=time(17)
        )
        staff_hours = OpeningHours(
            tenant_id=tenant_id, resource_id=staff.id, weekday=1, opens=time(10), closes=time(14)
        )
        closure = Closure(
            tenant_id=tenant_id, starts_on=date(2031, 12, 24), ends_on=date(2031, 12, 26)
        )
        session.add_all([business_hours, staff_hours, closure])
        await session.commit()
    booking_id = await add_booking(
        sessions,
        tenant_id,
        customer_id=customer.id,
        service_id=service.id,
        staff_id=staff.id,
        starts_at=datetime.fromisoformat("2031-05-06T10:00:00+00:00"),
        ends_at=datetime.fromisoformat("2031-05-06T10:30:00+00:00"),
    )
    message_id = await add_message(sessions, tenant_id, "Please call me back")
    return Catalog(
        number=number.e164,
        service_id=service.id,
        staff_id=staff.id,
        business_hours_id=business_hours.id,
        staff_hours_id=staff_hours.id,
        closure_id=closure.id,
        knowledge_id=knowledge.id,
        customer_id=customer.id,
        booking_id=booking_id,
        message_id=message_id,
    )


async def snapshot(sessions: Sessions, model: type[Base], **key: Any) -> dict[str, Any] | None:
    """Every column of one row as stored (None when it does not exist)."""
    table = model.__table__
    async with sessions() as session:
        row = (await session.execute(select(table).filter_by(**key))).mappings().first()
    return None if row is None else dict(row)


async def performed_services(sessions: Sessions, staff_id: int) -> set[str]:
    """Service ids linked to a staff member in Postgres."""
    async with sessions() as session:
        rows = await session.scalars(
            select(ResourceService.service_id).where(ResourceService.resource_id == staff_id)
        )
        return set(rows)


def detail(response: httpx.Response) -> str:
    """The error message of a response, whatever its shape (string or FastAPI's list)."""
    body = response.json()
    value = body.get("detail") if isinstance(body, dict) else body
    return value if isinstance(value, str) else str(value)
