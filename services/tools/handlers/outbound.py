"""report_outcome: the agent of an outbound call records what the call achieved.

The outcome is stored on the call's outbound request (found by its CallSid); the gateway sends
it by webhook once Twilio reports the call completed. The result tells the agent the exact
words to say next: thanks, or the voicemail message.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.tools.handlers.context import ToolContext, ToolError
from shared.db.models import OutboundCallRequest
from shared.tenancy.outbound_prompt import ReservationDetails, closing_line
from shared.tenancy.tool_specs import ReportOutcomeArgs


async def report_outcome(
    session: AsyncSession, ctx: ToolContext, args: ReportOutcomeArgs
) -> dict[str, Any]:
    """Store the outcome on this call's outbound request (a later report replaces it)."""
    request = await session.scalar(
        select(OutboundCallRequest)
        .where(
            OutboundCallRequest.tenant_id == ctx.tenant_id,
            OutboundCallRequest.twilio_call_sids.contains([ctx.call_sid]),
        )
        .with_for_update()
    )
    if request is None:
        raise ToolError("This is not an outbound call, so there is no outcome to report.")
    if request.status == "completed":
        raise ToolError("The outcome of this call was already sent; just say goodbye.")
    try:
        details = ReservationDetails.model_validate(request.details)
    except ValidationError as exc:
        raise ToolError("The request behind this call is unreadable.") from exc
    if args.outcome == "alternative_offered" and args.time is None:
        raise ToolError("Say which time they offered: 'time' is needed for alternative_offered.")
    when = args.time or (details.date_time if args.outcome == "confirmed" else None)
    outcome_details: dict[str, Any] = {
        "time": when.replace(tzinfo=None).isoformat(timespec="minutes") if when else None,
        "notes": args.notes,
        "call_sid": ctx.call_sid,
        "reported_by": "agent",
    }
    if args.outcome == "alternative_offered" and when is not None:
        outcome_details["accepted"] = bool(args.accepted)
        outcome_details["within_flexibility"] = details.within_flexibility(when)
    request.outcome = args.outcome
    request.outcome_details = outcome_details
    request.outcome_at = ctx.now
    return {
        "status": "recorded",
        "outcome": args.outcome,
        "say": closing_line(args.outcome, details),
    }
