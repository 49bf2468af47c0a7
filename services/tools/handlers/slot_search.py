"""What the availability and booking tools share: choosing the service and resources, searching
free slots in chunks of days, checking one start time, and phrasing slots for the agent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.tools.handlers.context import ToolContext, ToolError
from services.tools.handlers.lookup import pick_service, pick_staff, tenant_of
from services.tools.scheduling import spoken
from services.tools.scheduling.availability import (
    Problem,
    Slot,
    StartCheck,
    check_start,
    find_slots,
)
from services.tools.scheduling.calendar_data import (
    load_inputs,
    resources_for,
    services_of,
    tenant_zone,
)
from services.tools.scheduling.local_time import today, utc_to_local
from shared.db.models import Resource, Service, Tenant

SEARCH_CHUNK_DAYS = 14
ALTERNATIVES = 3


@dataclass(frozen=True)
class Plan:
    """A service at a business and the resources that may take it, in order of preference."""

    tenant: Tenant
    tz: ZoneInfo
    service: Service
    resources: list[Resource]


def _fits_party(resource: Resource, party_size: int) -> bool:
    return resource.kind == "staff" or resource.capacity >= party_size


async def plan_for(
    session: AsyncSession,
    ctx: ToolContext,
    service_name: str,
    staff_name: str | None,
    party_size: int = 1,
    *,
    prefer: int | None = None,
) -> Plan:
    """Resolve names to a Plan (errors list the valid names); `prefer` goes first."""
    tenant = await tenant_of(session, ctx)
    service = pick_service(await services_of(session, tenant.id), service_name)
    performing = await resources_for(session, tenant.id, service.id)
    if staff_name and staff_name.strip():
        resources = [pick_staff(performing, staff_name, service)]
    else:
        resources = sorted(performing, key=lambda r: r.id != prefer)
    sized = [r for r in resources if _fits_party(r, party_size)]
    if not sized:
        if not resources:
            raise ToolError(f"Nobody is available for {service.name} at the moment.")
        largest = max(r.capacity for r in resources)
        raise ToolError(
            f"I can't book {service.name} for {party_size} people; the most we can seat"
            f" together is {largest}."
        )
    return Plan(tenant, tenant_zone(tenant), service, sized)


def slot_json(slot: Slot, plan: Plan) -> dict[str, Any]:
    """A slot as the agent reads it (and passes `start` back to book it)."""
    return {
        "start": spoken.iso_local(slot.local),
        "spoken": spoken.moment(slot.local),
        "staff": slot.resource_name,
    }


def _note(warnings: list[str]) -> dict[str, str]:
    if not warnings:
        return {}
    return {"note": "Some calendars could not be checked: " + "; ".join(dict.fromkeys(warnings))}


async def search(
    session: AsyncSession,
    ctx: ToolContext,
    plan: Plan,
    first_day: date,
    last_day: date | None = None,
    *,
    limit: int = 5,
    exclude_booking_id: str | None = None,
) -> tuple[list[Slot], list[str]]:
    """Free slots from `first_day` (at most `limit`), loading the calendar two weeks at a time."""
    horizon = today(ctx.now, plan.tz) + timedelta(days=plan.tenant.horizon_days)
    end = min(last_day or horizon, horizon)
    day = max(first_day, today(ctx.now, plan.tz))
    found: list[Slot] = []
    warnings: list[str] = []
    while day <= end and len(found) < limit:
        chunk_end = min(day + timedelta(days=SEARCH_CHUNK_DAYS - 1), end)
        inputs = await load_inputs(
            session,
            plan.tenant,
            plan.service,
            plan.resources,
            day,
            chunk_end,
            ctx.now,
            exclude_booking_id=exclude_booking_id,
        )
        warnings.extend(inputs.warnings)
        found.extend(
            find_slots(inputs.rules, inputs.resources, day, chunk_end, limit=limit - len(found))
        )
        day = chunk_end + timedelta(days=1)
    return found, warnings


async def alternatives(
    session: AsyncSession,
    ctx: ToolContext,
    plan: Plan,
    near: datetime | None,
    *,
    exclude_booking_id: str | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The next few free slots from the day of `near` (from now if it is past or unknown)."""
    start_day = today(ctx.now, plan.tz)
    if near is not None and near.date() > start_day:
        start_day = near.date()
    slots, warnings = await search(
        session, ctx, plan, start_day, limit=ALTERNATIVES, exclude_booking_id=exclude_booking_id
    )
    if not slots and start_day > today(ctx.now, plan.tz):
        slots, warnings = await search(
            session,
            ctx,
            plan,
            today(ctx.now, plan.tz),
            limit=ALTERNATIVES,
            exclude_booking_id=exclude_booking_id,
        )
    return [slot_json(s, plan) for s in slots], warnings


async def check(
    session: AsyncSession,
    ctx: ToolContext,
    plan: Plan,
    wall: datetime,
    *,
    exclude_booking_id: str | None = None,
) -> tuple[StartCheck, list[str]]:
    """Whether local `wall` is bookable for the plan, and on which resources."""
    inputs = await load_inputs(
        session,
        plan.tenant,
        plan.service,
        plan.resources,
        wall.date() - timedelta(days=1),
        wall.date(),
        ctx.now,
        exclude_booking_id=exclude_booking_id,
    )
    return check_start(inputs.rules, inputs.resources, wall), inputs.warnings


def local_wall(requested: datetime, tz: ZoneInfo) -> datetime:
    """A requested start as naive local wall-clock time (an offset, if given, is honoured)."""
    if requested.tzinfo is None:
        return requested.replace(second=0, microsecond=0)
    return utc_to_local(requested.astimezone(UTC), tz).replace(second=0, microsecond=0)


def with_note(result: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """Add a sayable note about calendars that could not be checked."""
    return result | _note(warnings)


def problem_error(check_result: StartCheck, plan: Plan, wall: datetime) -> ToolError:
    """A caller-facing error for a start time that cannot be booked (alternatives added later)."""
    when = spoken.moment(wall)
    problem = check_result.problem
    if problem is Problem.NONEXISTENT:
        return ToolError(f"{when} doesn't exist: the clocks go forward that night.")
    if problem is Problem.PAST:
        return ToolError(f"{when} has already passed.")
    if problem is Problem.TOO_SOON:
        notice = spoken.duration(plan.tenant.min_notice_min)
        return ToolError(f"{when} is too soon; we need at least {notice} notice.")
    if problem is Problem.BEYOND_HORIZON:
        return ToolError(
            f"{when} is too far ahead; we take bookings up to {plan.tenant.horizon_days}"
            " days ahead."
        )
    if problem is Problem.CLOSED:
        reason = check_result.closure.reason if check_result.closure else ""
        suffix = f" ({reason})" if reason else ""
        return ToolError(f"We're closed on {spoken.day(wall.date())}{suffix}.")
    if problem is Problem.OUTSIDE_HOURS:
        return ToolError(f"{when} is outside our opening hours for {plan.service.name}.")
    return ToolError(f"{when} is already taken.")
