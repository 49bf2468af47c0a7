"""book_appointment: book a free start time for a caller."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.tools import calendars
from services.tools.handlers.context import ToolContext
from services.tools.handlers.slot_search import (
    Plan,
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
    CallerBooking,
    NewBooking,
    insert_booking,
    same_booking,
    short_id,
    upsert_customer,
)
from services.tools.scheduling.local_time import local_to_utc
from shared.db.models import Booking
from shared.tenancy.tool_specs import BookAppointmentArgs

log = logging.getLogger(__name__)


async def taken(
    session: AsyncSession,
    ctx: ToolContext,
    plan: Plan,
    wall: datetime,
    *,
    exclude_booking_id: str | None = None,
) -> dict[str, Any]:
    """The result when someone else has the time: status `taken` and the next free times."""
    options, warnings = await alternatives(
        session, ctx, plan, wall, exclude_booking_id=exclude_booking_id
    )
    message = f"Sorry, {spoken.moment(wall)} has just been taken."
    if not options:
        message += " I can't see another free time soon."
    return with_note({"status": "taken", "message": message, "alternatives": options}, warnings)


def push_after_commit(ctx: ToolContext, booking_id: str) -> None:
    """Write the booking to connected external calendars once it is committed."""

    async def push(session: AsyncSession) -> None:
        booking = await session.get(Booking, booking_id)
        if booking is None:
            return
        refs = await calendars.push_booking(session, booking)
        booking.external_refs = dict(refs)
        await session.commit()

    ctx.then(push)


def remove_after_commit(ctx: ToolContext, booking_id: str) -> None:
    """Delete a cancelled or moved booking's external calendar events once committed."""

    async def remove(session: AsyncSession) -> None:
        booking = await session.get(Booking, booking_id)
        if booking is None:
            return
        for warning in await calendars.remove_booking(session, booking):
            log.warning("calendar removal of booking %s: %s", booking_id, warning)
        await session.commit()  # remove_booking drops the refs it deleted

    ctx.then(remove)


async def book_appointment(
    session: AsyncSession, ctx: ToolContext, args: BookAppointmentArgs
) -> dict[str, Any]:
    """Upsert the customer, then book the first free resource (the constraint decides races).
    The caller asking again for a booking they already hold gets that booking back."""
    plan = await plan_for(session, ctx, args.service, args.staff, args.party_size)
    wall = local_wall(args.start, plan.tz)
    verdict, warnings = await check(session, ctx, plan, wall)
    if verdict.problem is Problem.TAKEN:
        return await _own_or_taken(session, ctx, args, plan, wall)
    if verdict.problem is not None or verdict.start is None:
        error = problem_error(verdict, plan, wall)
        options, more = await alternatives(session, ctx, plan, wall)
        error.extra.update(with_note({"alternatives": options}, warnings + more))
        raise error
    customer_id = await upsert_customer(session, plan.tenant.id, args.phone, args.customer_name)
    for resource in verdict.free:
        booking_id = await insert_booking(
            session,
            NewBooking(
                tenant_id=plan.tenant.id,
                customer_id=customer_id,
                service=plan.service,
                resource_id=resource.id,
                start=verdict.start,
                party_size=args.party_size,
                notes=args.notes,
                call_sid=ctx.call_sid or None,
            ),
        )
        if booking_id is not None:
            push_after_commit(ctx, booking_id)
            return with_note(_confirmed(booking_id, plan, wall, resource.name, args), warnings)
    return await _own_or_taken(session, ctx, args, plan, wall)


def _confirmed(
    booking_id: str, plan: Plan, wall: datetime, staff: str, args: BookAppointmentArgs
) -> dict[str, Any]:
    return {
        "status": "confirmed",
        "booking_id": short_id(booking_id),
        "service": plan.service.name,
        "start": spoken.iso_local(wall),
        "spoken": spoken.moment(wall),
        "staff": staff,
        "customer_name": args.customer_name,
        "phone": args.phone,
        "price": spoken.price(plan.service.price_minor, plan.service.currency),
    }


async def _own_or_taken(
    session: AsyncSession, ctx: ToolContext, args: BookAppointmentArgs, plan: Plan, wall: datetime
) -> dict[str, Any]:
    """The time is not free: if this caller already holds exactly this booking (the same
    request again under a new tool call id, e.g. after a timeout), it is theirs; else taken."""
    start = local_to_utc(wall, plan.tz)
    own = start and await same_booking(
        session, plan.tenant.id, args.phone, plan.service.id, start, [r.id for r in plan.resources]
    )
    if own and _may_see(ctx, args, own):
        result = _confirmed(own.booking.id, plan, wall, own.resource.name, args)
        result["already_booked"] = True
        result["message"] = "This booking was already made for the caller; it is confirmed."
        return result
    return await taken(session, ctx, plan, wall)


def _may_see(ctx: ToolContext, args: BookAppointmentArgs, own: CallerBooking) -> bool:
    """Only the phone's owner, or the call that made the booking, learns about it."""
    return ctx.caller == args.phone or (bool(ctx.call_sid) and own.booking.call_sid == ctx.call_sid)
