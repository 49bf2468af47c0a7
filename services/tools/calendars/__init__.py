"""External calendars (Google Calendar, CalDAV): busy time that blocks slots, and confirmed
bookings written back. Every call is time-boxed per connection (`timeout_ms`), calls to several
connections run concurrently, and a slow or failing calendar is reported as a warning phrased
for the agent (so it can say so) and never raises or stalls the call.

Public interface used by the scheduling tools:
- `busy_intervals(session, tenant_id, resource_ids, start, end) -> BusyResult`
- `push_booking(session, booking) -> dict[str, str]` (refs stored in booking.external_refs)
- `remove_booking(session, booking) -> list[str]` (warnings)

A connection with `resource_id` NULL is business-wide: its busy time blocks every resource, and
bookings written to it are marked transparent (free) so they do not block the other resources.
The functions change `booking.external_refs` in the session; committing is the caller's job.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import partial
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.tools.calendars.caldav import CalDavCalendar
from services.tools.calendars.google import GoogleCalendar
from services.tools.calendars.model import (
    CalendarClient,
    CalendarError,
    EventDraft,
    Interval,
    as_utc,
    merge,
)
from services.tools.calendars.timebox import MAX_TIMEOUT_MS, time_boxed
from shared.db.models import Booking, CalendarConnection, Customer, Resource, Service, Tenant
from shared.runtime.guarded_http import guarded_client
from shared.runtime.outbound_guard import UrlPolicy
from shared.runtime.settings import get_settings

__all__ = ["BusyResult", "Interval", "busy_intervals", "push_booking", "remove_booking"]

log = logging.getLogger("tools.calendars")

KIND_NAMES = {"google": "Google calendar", "caldav": "calendar"}


@dataclass
class BusyResult:
    """Busy intervals per resource id, plus human-readable warnings for calendars that failed."""

    busy: dict[int, list[Interval]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Context:
    """What phrasing and parsing need: the business's zone and each connection's label."""

    zone: tzinfo
    zone_name: str
    labels: dict[str, str]


async def _connections(session: AsyncSession, tenant_id: str) -> list[CalendarConnection]:
    rows = await session.scalars(
        select(CalendarConnection)
        .where(CalendarConnection.tenant_id == tenant_id)
        .order_by(CalendarConnection.id)
    )
    return list(rows)


async def _context(
    session: AsyncSession, tenant_id: str, connections: list[CalendarConnection]
) -> _Context:
    tenant = await session.get(Tenant, tenant_id)
    zone_name = tenant.timezone if tenant is not None else "UTC"
    try:
        zone: tzinfo = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("tenant has an unknown time zone; using UTC", extra={"tenant_id": tenant_id})
        zone, zone_name = UTC, "UTC"
    resource_ids = {c.resource_id for c in connections if c.resource_id is not None}
    names: dict[int, str] = {}
    if resource_ids:
        rows = await session.execute(
            select(Resource.id, Resource.name).where(Resource.id.in_(resource_ids))
        )
        names = {rid: name for rid, name in rows}
    labels = {
        c.id: _label(c, names.get(c.resource_id) if c.resource_id else None) for c in connections
    }
    return _Context(zone=zone, zone_name=zone_name, labels=labels)


def _label(connection: CalendarConnection, owner: str | None) -> str:
    """`Dave's Google calendar`, `the business's calendar`."""
    kind = KIND_NAMES.get(connection.kind, "calendar")
    return f"{owner}'s {kind}" if owner else f"the business's {kind}"


def _client(
    connection: CalendarConnection, http: httpx.AsyncClient, zone: tzinfo
) -> CalendarClient:
    config = connection.config if isinstance(connection.config, dict) else {}
    if connection.kind == "google":
        return GoogleCalendar(http, config)
    if connection.kind == "caldav":
        return CalDavCalendar(http, config, zone)
    raise CalendarError(f"unknown calendar kind {connection.kind!r}")


def _http() -> httpx.AsyncClient:
    """A client that connects only to addresses the outbound guard allows (a tenant's calendar
    URL must not reach loopback, private ranges or cloud metadata), to the address it checked.
    The time box (asyncio.wait_for) is the real limit; httpx's own timeout is a backstop."""
    policy = UrlPolicy.from_settings(get_settings())
    return guarded_client(policy, timeout=MAX_TIMEOUT_MS / 1000)


async def busy_intervals(
    session: AsyncSession, tenant_id: str, resource_ids: list[int], start: datetime, end: datetime
) -> BusyResult:
    """Busy time of `resource_ids` in [start, end) from the tenant's connected calendars:
    merged, clipped to the window, in UTC; every requested id has an entry (maybe empty).
    Calendars that could not be read within their time box add a warning instead."""
    start, end = as_utc(start), as_utc(end)
    result = BusyResult(busy={rid: [] for rid in resource_ids})
    wanted = set(resource_ids)
    connections = [
        c
        for c in await _connections(session, tenant_id)
        if c.resource_id is None or c.resource_id in wanted
    ]
    if not connections or end <= start:
        return result
    context = await _context(session, tenant_id, connections)
    async with _http() as http:

        async def read(connection: CalendarConnection) -> list[Interval]:
            return await _client(connection, http, context.zone).busy(start, end)

        outcomes = await asyncio.gather(
            *(
                time_boxed(partial(read, c), c.timeout_ms, f"busy {c.kind} {c.id}")
                for c in connections
            )
        )
    for connection, outcome in zip(connections, outcomes, strict=True):
        if outcome.value is None:
            result.warnings.append(
                f"I couldn't check {context.labels[connection.id]} just now, "
                "so this time isn't confirmed against it"
            )
            continue
        owners = resource_ids if connection.resource_id is None else [connection.resource_id]
        for rid in owners:
            result.busy[rid].extend(outcome.value)
    for rid, intervals in result.busy.items():
        clipped = [(max(s, start), min(e, end)) for s, e in intervals if s < end and e > start]
        result.busy[rid] = merge(clipped)
    return result


async def _draft(session: AsyncSession, booking: Booking) -> tuple[str, str]:
    """Summary and description of a booking's calendar event."""
    service = await session.get(Service, booking.service_id)
    customer = await session.get(Customer, booking.customer_id)
    service_name = service.name if service is not None else "Booking"
    who = (customer.name or customer.phone) if customer is not None else "a caller"
    lines = [f"Booked by FrontDesk for {who}."]
    if customer is not None and customer.phone:
        lines.append(f"Phone: {customer.phone}")
    if booking.party_size and booking.party_size > 1:
        lines.append(f"Party size: {booking.party_size}")
    if booking.notes:
        lines.append(f"Notes: {booking.notes}")
    lines.append(f"Booking reference: {booking.id}")
    return f"{service_name} – {who}", "\n".join(lines)


def _event_key(booking: Booking) -> str:
    """Stable per booking, resource and start time; base32hex-safe (see EventDraft)."""
    seconds = int(as_utc(booking.starts_at).timestamp())
    return f"fd{booking.id.lower()}r{booking.resource_id:x}t{seconds:x}"


async def push_booking(session: AsyncSession, booking: Booking) -> dict[str, str]:
    """Write a confirmed booking to the calendars of its resource and the business-wide ones.
    Returns every ref by connection id (earlier ones included) and stores that mapping in
    `booking.external_refs`; calendars that fail are logged and left without a ref, and a
    connection that already has a ref is not written again (so retrying is safe)."""
    refs: dict[str, str] = dict(booking.external_refs or {})
    connections = [
        c
        for c in await _connections(session, booking.tenant_id)
        if (c.resource_id is None or c.resource_id == booking.resource_id) and c.id not in refs
    ]
    if not connections:
        return refs
    context = await _context(session, booking.tenant_id, connections)
    summary, description = await _draft(session, booking)

    def draft_for(connection: CalendarConnection) -> EventDraft:
        return EventDraft(
            key=_event_key(booking),
            booking_id=booking.id,
            summary=summary,
            description=description,
            start=as_utc(booking.starts_at),
            end=as_utc(booking.ends_at),
            timezone=context.zone_name,
            transparent=connection.resource_id is None,
        )

    async with _http() as http:

        async def write(connection: CalendarConnection) -> str:
            return await _client(connection, http, context.zone).create(draft_for(connection))

        outcomes = await asyncio.gather(
            *(
                time_boxed(partial(write, c), c.timeout_ms, f"create {c.kind} {c.id}")
                for c in connections
            )
        )
    for connection, outcome in zip(connections, outcomes, strict=True):
        if outcome.value is not None:
            refs[connection.id] = outcome.value
        else:
            log.warning(
                "booking not written to %s",
                context.labels[connection.id],
                extra={"booking_id": booking.id, "connection_id": connection.id},
            )
    booking.external_refs = dict(refs)
    return refs


async def remove_booking(session: AsyncSession, booking: Booking) -> list[str]:
    """Delete a cancelled/moved booking's external events; returns warnings. Refs that were
    deleted (or whose event or connection is already gone) are dropped from
    `booking.external_refs`; refs that failed stay there so a later retry can remove them."""
    refs: dict[str, str] = dict(booking.external_refs or {})
    if not refs:
        return []
    by_id = {c.id: c for c in await _connections(session, booking.tenant_id)}
    connections = [by_id[cid] for cid in refs if cid in by_id]
    remaining = {cid: ref for cid, ref in refs.items() if cid in by_id}
    warnings: list[str] = []
    if connections:
        context = await _context(session, booking.tenant_id, connections)
        async with _http() as http:

            async def erase(connection: CalendarConnection) -> bool:
                await _client(connection, http, context.zone).delete(refs[connection.id])
                return True

            outcomes = await asyncio.gather(
                *(
                    time_boxed(partial(erase, c), c.timeout_ms, f"delete {c.kind} {c.id}")
                    for c in connections
                )
            )
        for connection, outcome in zip(connections, outcomes, strict=True):
            if outcome.value:
                remaining.pop(connection.id)
            else:
                warnings.append(
                    f"I couldn't remove this booking from {context.labels[connection.id]} "
                    "just now, so it may still show there"
                )
    booking.external_refs = remaining
    return warnings
