"""Load the slot engine's inputs from Postgres (and connected external calendars)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.tools import calendars
from services.tools.scheduling.availability import (
    BusyTimes,
    Closure,
    Hours,
    Interval,
    ResourceCalendar,
    SlotRules,
)
from services.tools.scheduling.local_time import local_to_utc
from shared.db.models import Booking, OpeningHours, Resource, ResourceService, Service, Tenant
from shared.db.models import Closure as ClosureRow


@dataclass(frozen=True)
class CalendarInputs:
    """The engine's inputs for one service and a window of days, plus calendar warnings."""

    rules: SlotRules
    resources: list[ResourceCalendar]
    warnings: list[str]


def tenant_zone(tenant: Tenant) -> ZoneInfo:
    """The tenant's time zone (UTC when the stored name is unknown)."""
    try:
        return ZoneInfo(tenant.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


async def services_of(session: AsyncSession, tenant_id: str) -> list[Service]:
    """Every service of a tenant, by name."""
    rows = await session.scalars(
        select(Service).where(Service.tenant_id == tenant_id).order_by(Service.name)
    )
    return list(rows)


async def resources_for(session: AsyncSession, tenant_id: str, service_id: str) -> list[Resource]:
    """Active resources that perform a service (one with no service rows performs all), in the
    order to offer them: smallest capacity first (best-fitting table), then by name."""
    any_rows = select(ResourceService.resource_id).where(ResourceService.resource_id == Resource.id)
    performs = select(ResourceService.resource_id).where(
        ResourceService.resource_id == Resource.id, ResourceService.service_id == service_id
    )
    rows = await session.scalars(
        select(Resource)
        .where(
            Resource.tenant_id == tenant_id,
            Resource.active.is_(True),
            or_(~any_rows.exists(), performs.exists()),
        )
        .order_by(Resource.capacity, Resource.name)
    )
    return list(rows)


def _hours(rows: list[OpeningHours]) -> dict[int, list[tuple[time, time]]]:
    hours: dict[int, list[tuple[time, time]]] = defaultdict(list)
    for row in rows:
        hours[row.weekday].append((row.opens, row.closes))
    return dict(hours)


async def _opening_hours(session: AsyncSession, tenant_id: str) -> tuple[Hours, dict[int, Hours]]:
    rows = list(
        await session.scalars(select(OpeningHours).where(OpeningHours.tenant_id == tenant_id))
    )
    by_resource: dict[int, list[OpeningHours]] = defaultdict(list)
    for row in rows:
        if row.resource_id is not None:
            by_resource[row.resource_id].append(row)
    business = _hours([r for r in rows if r.resource_id is None])
    return business, {rid: _hours(own) for rid, own in by_resource.items()}


async def _closures(
    session: AsyncSession, tenant_id: str, first_day: date, last_day: date
) -> tuple[tuple[Closure, ...], dict[int, tuple[Closure, ...]]]:
    rows = await session.scalars(
        select(ClosureRow).where(
            ClosureRow.tenant_id == tenant_id,
            ClosureRow.starts_on <= last_day,
            ClosureRow.ends_on >= first_day,
        )
    )
    business: list[Closure] = []
    by_resource: dict[int, list[Closure]] = defaultdict(list)
    for row in rows:
        closure = Closure(row.starts_on, row.ends_on, row.reason)
        (business if row.resource_id is None else by_resource[row.resource_id]).append(closure)
    return tuple(business), {rid: tuple(c) for rid, c in by_resource.items()}


async def _booked(
    session: AsyncSession,
    resource_ids: list[int],
    start: datetime,
    end: datetime,
    exclude_booking_id: str | None,
) -> dict[int, list[Interval]]:
    query = select(Booking.resource_id, Booking.starts_at, Booking.blocked_until).where(
        Booking.resource_id.in_(resource_ids),
        Booking.status == "confirmed",
        Booking.starts_at < end,
        Booking.blocked_until > start,
    )
    if exclude_booking_id is not None:
        query = query.where(Booking.id != exclude_booking_id)
    busy: dict[int, list[Interval]] = defaultdict(list)
    for resource_id, starts_at, blocked_until in await session.execute(query):
        busy[resource_id].append((starts_at, blocked_until))
    return busy


def _window(tz: ZoneInfo, first_day: date, last_day: date) -> tuple[datetime, datetime]:
    def at_midnight(day: date) -> datetime:
        instant = local_to_utc(datetime.combine(day, time(0)), tz)
        if instant is None:  # a zone that skips midnight: take an hour later
            instant = local_to_utc(datetime.combine(day, time(1)), tz)
        assert instant is not None
        return instant

    return at_midnight(first_day), at_midnight(last_day + timedelta(days=2))


async def load_inputs(
    session: AsyncSession,
    tenant: Tenant,
    service: Service,
    resources: list[Resource],
    first_day: date,
    last_day: date,
    now: datetime,
    *,
    exclude_booking_id: str | None = None,
) -> CalendarInputs:
    """Hours, closures, bookings and external busy time of `resources` for local days
    `first_day`..`last_day` (`exclude_booking_id`: a booking being moved, which is not busy)."""
    tz = tenant_zone(tenant)
    business_hours, own_hours = await _opening_hours(session, tenant.id)
    business_closures, own_closures = await _closures(session, tenant.id, first_day, last_day)
    start, end = _window(tz, first_day, last_day)
    ids = [r.id for r in resources]
    booked = await _booked(session, ids, start, end, exclude_booking_id)
    external = await calendars.busy_intervals(session, tenant.id, ids, start, end)
    calendars_of = [
        ResourceCalendar(
            id=r.id,
            name=r.name,
            hours=own_hours.get(r.id),
            closures=own_closures.get(r.id, ()),
            busy=BusyTimes([*booked.get(r.id, []), *external.busy.get(r.id, [])]),
        )
        for r in resources
    ]
    rules = SlotRules(
        tz=tz,
        business_hours=business_hours,
        now=now,
        duration=timedelta(minutes=service.duration_min),
        buffer=timedelta(minutes=service.buffer_min),
        step=timedelta(minutes=max(tenant.slot_step_min, 1)),
        min_notice=timedelta(minutes=max(tenant.min_notice_min, 0)),
        horizon_days=tenant.horizon_days,
        closures=business_closures,
    )
    return CalendarInputs(rules=rules, resources=calendars_of, warnings=list(external.warnings))
