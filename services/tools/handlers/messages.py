"""take_message: a message for the business to call the caller back."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.tools.handlers.context import ToolContext, ToolError
from services.tools.handlers.lookup import tenant_of
from services.tools.scheduling.booking_store import save_message
from shared.tenancy.tool_specs import TakeMessageArgs


async def take_message(
    session: AsyncSession, ctx: ToolContext, args: TakeMessageArgs
) -> dict[str, Any]:
    """Store the message with the number to call back."""
    tenant = await tenant_of(session, ctx)
    callback = args.callback_number or ctx.caller
    if not callback:
        raise ToolError("I need a number to call you back on; could you give me one?")
    await save_message(session, tenant.id, ctx.call_sid, callback, args.caller_name, args.message)
    return {
        "status": "saved",
        "message": f"Your message is saved; {tenant.name} will call you back on {callback}.",
        "callback_number": callback,
    }
