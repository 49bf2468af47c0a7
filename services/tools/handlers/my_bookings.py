"""The caller's own bookings: find_my_bookings, reschedule_appointment, cancel_appointment.

Every lookup is scoped to the number the caller is calling from; a reference that belongs to
anyone else gets the same answer as one that does not exist."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.tools.handlers.booking import push_after_commit, remove_after_commit, taken
from services.tools.handlers.context import ToolContext, ToolError
from services.tools.handlers.lookup import tenant_of
from services.tools.handlers.slot_search import (
    alternatives,
    check,
    local_wall,
    plan_for,
    problem_error,
    with_note,
)
from services.tools.scheduling import spoken
from services.tools.scheduling.availability import Problem
from services.tools.scheduling.booking_store import (
    SHORT_ID_LEN,
    CallerBooking,
    NewBooking,
    caller_bookings,
    cancel_booking,
    move_booking,
    short_id,
)
from services.tools.scheduling.calendar_data import tenant_zone
from services.tools.scheduling.local_time import utc_to_local
from shared.tenancy.tool_specs import BookingRef, NoArgs, RescheduleArgs

NOT_FOUND = "I couldn't find that booking under your number."
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def _require_caller(ctx: ToolContext) -> str:
    if not ctx.caller:
        raise ToolError(
            "I can only look up bookings for the number you're calling from, and I can't see"
            " your number on this call."
        )
    return ctx.caller


def _describe(item: CallerBooking, tz: ZoneInfo) -> dict[str, Any]:
    wall = utc_to_local(item.booking.starts_at, tz)
    return {
        "booking_id": item.short_id,
        "service": item.service.name,
        "start": spoken.iso_local(wall),
        "spoken": spoken.moment(wall),
        "staff": item.resource.name,
    }


async def _own_booking(session: AsyncSession, ctx: ToolContext, ref: str) -> CallerBooking:
    """The caller's upcoming booking whose id starts with `ref` (at least 6 characters)."""
    phone = _require_caller(ctx)
    wanted = _NOT_ALNUM.sub("", ref.lower())
    if len(wanted) < SHORT_ID_LEN:
        raise ToolError(NOT_FOUND)
    mine = await caller_bookings(session, ctx.tenant_id, phone, ctx.now)
    matches = [b for b in mine if b.booking.id.lower().startswith(wanted)]
    if len(matches) != 1:
        raise ToolError(NOT_FOUND)
    return matches[0]


async def find_my_bookings(session: AsyncSession, ctx: ToolContext, args: NoArgs) -> dict[str, Any]:
    """Upcoming confirmed bookings under the caller's own number."""
    tenant = await tenant_of(session, ctx)
    phone = _require_caller(ctx)
    mine = await caller_bookings(session, tenant.id, phone, ctx.now)
    tz = tenant_zone(tenant)
    result: dict[str, Any] = {"bookings": [_describe(b, tz) for b in mine]}
    if not mine:
        result["message"] = (
            "I can't see any upcoming bookings under the number you're calling from."
        )
    return result


async def cancel_appointment(
    session: AsyncSession, ctx: ToolContext, args: BookingRef
) -> dict[str, Any]:
    """Cancel one of the caller's own bookings."""
    tenant = await tenant_of(session, ctx)
    item = await _own_booking(session, ctx, args.booking_id)
    if not await cancel_booking(session, item.booking.id):
        raise ToolError(NOT_FOUND)
    remove_after_commit(ctx, item.booking.id)
    described = _describe(item, tenant_zone(tenant))
    return {
        "status": "cancelled",
        "message": f"Your {item.service.name} on {described['spoken']} is cancelled.",
        **described,
    }


async def reschedule_appointment(
    session: AsyncSession, ctx: ToolContext, args: RescheduleArgs
) -> dict[str, Any]:
    """Move one of the caller's own bookings: the old one is released and the new one inserted
    in one transaction, so a taken time leaves the original booking untouched."""
    item = await _own_booking(session, ctx, args.booking_id)
    old = item.booking
    plan = await plan_for(
        session, ctx, item.service.name, args.staff, old.party_size, prefer=old.resource_id
    )
    wall = local_wall(args.new_start, plan.tz)
    verdict, warnings = await check(session, ctx, plan, wall, exclude_booking_id=old.id)
    if verdict.problem is Problem.TAKEN:
        return await taken(session, ctx, plan, wall, exclude_booking_id=old.id)
    if verdict.problem is not None or verdict.start is None:
        error = problem_error(verdict, plan, wall)
        options, more = await alternatives(session, ctx, plan, wall, exclude_booking_id=old.id)
        error.extra.update(with_note({"alternatives": options}, warnings + more))
        raise error
    previous = _describe(item, plan.tz)
    for resource in verdict.free:
        new_id = await move_booking(
            session,
            old.id,
            NewBooking(
                tenant_id=plan.tenant.id,
                customer_id=old.customer_id,
                service=plan.service,
                resource_id=resource.id,
                start=verdict.start,
                party_size=old.party_size,
                notes=old.notes,
                call_sid=ctx.call_sid or None,
            ),
        )
        if new_id is not None:
            remove_after_commit(ctx, old.id)
            push_after_commit(ctx, new_id)
            return with_note(
                {
                    "status": "rescheduled",
                    "booking_id": short_id(new_id),
                    "previous_booking_id": previous["booking_id"],
                    "previous_spoken": previous["spoken"],
                    "service": plan.service.name,
                    "start": spoken.iso_local(wall),
                    "spoken": spoken.moment(wall),
                    "staff": resource.name,
                },
                warnings,
            )
    return await taken(session, ctx, plan, wall, exclude_booking_id=old.id)
