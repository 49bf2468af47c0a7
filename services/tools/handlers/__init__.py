"""Implementations of the tools in ``shared.tenancy.tool_specs``: `HANDLERS` maps each tool name to
an async function of (session, context, validated arguments) returning a JSON-able dict.

Handlers only use the session they are given and never commit: the executor commits their
writes together with the tool invocation record, so a tool call takes effect exactly once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.tools.handlers.availability import check_availability
from services.tools.handlers.booking import book_appointment
from services.tools.handlers.call_control import end_call, transfer_to_human
from services.tools.handlers.context import AfterCommit, ToolContext, ToolError
from services.tools.handlers.info import get_business_info, list_services
from services.tools.handlers.messages import take_message
from services.tools.handlers.my_bookings import (
    cancel_appointment,
    find_my_bookings,
    reschedule_appointment,
)
from services.tools.handlers.outbound import report_outcome
from shared.tenancy.tool_specs import (
    BookAppointmentArgs,
    BookingRef,
    CheckAvailabilityArgs,
    EndCallArgs,
    NoArgs,
    ReportOutcomeArgs,
    RescheduleArgs,
    TakeMessageArgs,
    TransferArgs,
)

__all__ = ["HANDLERS", "AfterCommit", "Handler", "ToolContext", "ToolError"]

Handler = Callable[[AsyncSession, ToolContext, BaseModel], Awaitable[dict[str, Any]]]
A = TypeVar("A", bound=BaseModel)


def _typed(
    model: type[A], fn: Callable[[AsyncSession, ToolContext, A], Awaitable[dict[str, Any]]]
) -> Handler:
    async def run(session: AsyncSession, ctx: ToolContext, args: BaseModel) -> dict[str, Any]:
        if not isinstance(args, model):
            raise TypeError(f"{fn.__name__} takes {model.__name__}, not {type(args).__name__}")
        return await fn(session, ctx, args)

    return run


HANDLERS: dict[str, Handler] = {
    "get_business_info": _typed(NoArgs, get_business_info),
    "list_services": _typed(NoArgs, list_services),
    "check_availability": _typed(CheckAvailabilityArgs, check_availability),
    "book_appointment": _typed(BookAppointmentArgs, book_appointment),
    "find_my_bookings": _typed(NoArgs, find_my_bookings),
    "reschedule_appointment": _typed(RescheduleArgs, reschedule_appointment),
    "cancel_appointment": _typed(BookingRef, cancel_appointment),
    "take_message": _typed(TakeMessageArgs, take_message),
    "end_call": _typed(EndCallArgs, end_call),
    "transfer_to_human": _typed(TransferArgs, transfer_to_human),
    "report_outcome": _typed(ReportOutcomeArgs, report_outcome),
}
