"""`/v1/bookings`: appointments callers made, filtered by date and status; cancelling one."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.admin.activity_schemas import BookingOut, CustomerOut
from services.gateway.admin.auth import TenantId
from services.gateway.admin.params import Limit, ObjectId, Offset, StaffFilter
from services.gateway.admin.schemas import AUTH_ERRORS, error_doc
from services.gateway.admin.store import Session, conflict, invalid_body, not_found
from shared.db.models import Booking, Customer, Resource, Service, Tenant

CONFIRMED, CANCELLED = "confirmed", "cancelled"
_NOT_FOUND = error_doc(404, "No such booking in this tenant.")
router = APIRouter(
    prefix="/v1/bookings",
    tags=["bookings"],
    responses=AUTH_ERRORS,
)
DateFilter = Annotated[
    date | None,
    Query(
        description="Only bookings starting on/after (from) or on/before (to) "
        "this day, in the tenant's time zone."
    ),
]
StatusFilter = Annotated[
    str | None,
    Query(
        pattern=r"^[a-z_-]{1,16}$",
        description="Only bookings with this status.",
        examples=["confirmed"],
    ),
]


def _joined(tenant_id: str) -> Select[Booking, Customer, Service, Resource]:
    return (
        select(Booking, Customer, Service, Resource)
        .join(Customer, Customer.id == Booking.customer_id)
        .join(Service, Service.id == Booking.service_id)
        .join(Resource, Resource.id == Booking.resource_id)
        .where(Booking.tenant_id == tenant_id)
    )


def _booking_out(
    booking: Booking, customer: Customer, service: Service, staff: Resource
) -> BookingOut:
    return BookingOut(
        id=booking.id,
        status=booking.status,
        starts_at=booking.starts_at,
        ends_at=booking.ends_at,
        customer=CustomerOut.model_validate(customer),
        service_id=service.id,
        service_name=service.name,
        staff_id=staff.id,
        staff_name=staff.name,
        party_size=booking.party_size,
        notes=booking.notes,
        call_sid=booking.call_sid,
        created_at=booking.created_at,
        updated_at=booking.updated_at,
    )


async def _one(session: AsyncSession, tenant_id: str, booking_id: str) -> BookingOut:
    query = _joined(tenant_id).where(Booking.id == booking_id)
    row = (await session.execute(query.execution_options(populate_existing=True))).tuples().first()
    if row is None:
        raise not_found("booking")
    return _booking_out(*row)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


@router.get("", response_model=list[BookingOut], summary="List bookings")
async def list_bookings(
    tenant_id: TenantId,
    session: Session,
    date_from: DateFilter = None,
    date_to: DateFilter = None,
    status: StatusFilter = None,
    staff_id: StaffFilter = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[BookingOut]:
    """Bookings by start time; `date_from`/`date_to` are whole local days, both inclusive."""
    if date_from is not None and date_to is not None and date_from > date_to:
        raise invalid_body(
            "date_to", "date_to must not be before date_from", str(date_to), where="query"
        )
    query = _joined(tenant_id)
    if date_from is not None or date_to is not None:
        zone_name = await session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id))
        zone = ZoneInfo(zone_name or "UTC")
        if date_from is not None:
            query = query.where(Booking.starts_at >= _local_midnight(date_from, zone))
        if date_to is not None:
            end = _local_midnight(date_to + timedelta(days=1), zone)
            query = query.where(Booking.starts_at < end)
    if status is not None:
        query = query.where(Booking.status == status)
    if staff_id is not None:
        query = query.where(Booking.resource_id == staff_id)
    rows = await session.execute(
        query.order_by(Booking.starts_at, Booking.id).limit(limit).offset(offset)
    )
    return [_booking_out(*row) for row in rows.tuples()]


@router.get(
    "/{booking_id}", response_model=BookingOut, summary="Get a booking", responses=_NOT_FOUND
)
async def get_booking(booking_id: ObjectId, tenant_id: TenantId, session: Session) -> BookingOut:
    """One booking with its customer, service and staff member."""
    return await _one(session, tenant_id, booking_id)


@router.post(
    "/{booking_id}/cancel",
    response_model=BookingOut,
    summary="Cancel a booking",
    responses=_NOT_FOUND | error_doc(409, "Not a confirmed booking."),
)
async def cancel_booking(booking_id: ObjectId, tenant_id: TenantId, session: Session) -> BookingOut:
    """Cancel a confirmed booking (its time becomes free again)."""
    booking = await session.scalar(
        select(Booking)
        .where(Booking.id == booking_id, Booking.tenant_id == tenant_id)
        .with_for_update()
    )
    if booking is None:
        raise not_found("booking")
    if booking.status != CONFIRMED:
        raise conflict(f"only confirmed bookings can be cancelled; this one is {booking.status}")
    booking.status = CANCELLED
    await session.commit()
    return await _one(session, tenant_id, booking_id)
