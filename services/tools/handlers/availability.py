"""check_availability: the next free times for a service."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.tools.handlers.context import ToolContext, ToolError
from services.tools.handlers.slot_search import (
    ALTERNATIVES,
    plan_for,
    search,
    slot_json,
    with_note,
)
from services.tools.scheduling import spoken
from services.tools.scheduling.local_time import today
from shared.tenancy.tool_specs import CheckAvailabilityArgs

DEFAULT_SLOTS = 5


async def check_availability(
    session: AsyncSession, ctx: ToolContext, args: CheckAvailabilityArgs
) -> dict[str, Any]:
    """Up to five free slots (spread over days) in the requested range."""
    plan = await plan_for(session, ctx, args.service, args.staff, args.party_size)
    now_day = today(ctx.now, plan.tz)
    last_bookable = now_day + timedelta(days=plan.tenant.horizon_days)
    first_day = max(args.date_from or now_day, now_day)
    if args.date_to is not None and args.date_to < first_day:
        raise ToolError(
            f"That range ends before it starts; the earliest day I can check is"
            f" {spoken.day(first_day)}."
        )
    if first_day > last_bookable:
        raise ToolError(
            f"We take bookings up to {plan.tenant.horizon_days} days ahead, until"
            f" {spoken.day(last_bookable)}."
        )
    slots, warnings = await search(session, ctx, plan, first_day, args.date_to, limit=DEFAULT_SLOTS)
    result: dict[str, Any] = {
        "service": plan.service.name,
        "duration": spoken.duration(plan.service.duration_min),
        "slots": [slot_json(s, plan) for s in slots],
    }
    if not slots:
        until = min(args.date_to or last_bookable, last_bookable)
        result["message"] = (
            f"There are no free times for {plan.service.name} from {spoken.day(first_day)}"
            f" to {spoken.day(until)}."
        )
        if until < last_bookable:
            later, more_warnings = await search(
                session, ctx, plan, until + timedelta(days=1), limit=ALTERNATIVES
            )
            warnings.extend(more_warnings)
            result["next_available"] = [slot_json(s, plan) for s in later]
    return with_note(result, warnings)
