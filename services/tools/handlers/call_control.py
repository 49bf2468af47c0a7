"""Tools that end the conversation: hang up after the goodbye, or hand over to a person.

They only decide; the executor records the decision as a `call.intent` event, and media closes
the stream once the agent's last sentence has been heard.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.tools.handlers.context import ToolContext, ToolError
from shared.tenancy.tool_specs import EndCallArgs, TransferArgs


async def end_call(session: AsyncSession, ctx: ToolContext, args: EndCallArgs) -> dict[str, Any]:
    """The caller is done: the call ends after the goodbye in this reply."""
    return {"status": "ending", "say": "Say a short goodbye now; the call ends after it."}


async def transfer_to_human(
    session: AsyncSession, ctx: ToolContext, args: TransferArgs
) -> dict[str, Any]:
    """Hand the caller to a member of staff, if the business has a number for that."""
    if not ctx.transfer_number:
        raise ToolError("Nobody can take the call right now. Offer to take a message instead.")
    return {"status": "transferring", "say": "Tell the caller you are connecting them now."}
