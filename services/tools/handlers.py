"""Implementations of the tools in ``shared.tool_specs`` (database reads and writes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from shared.tenant_directory import load_tenant


class ToolError(Exception):
    """An error the agent can say to the caller (the message is phrased for that)."""


Handler = Callable[[AsyncSession, str, str, BaseModel], Awaitable[dict[str, Any]]]


async def get_business_info(
    session: AsyncSession, tenant_id: str, caller: str, args: BaseModel
) -> dict[str, Any]:
    """Name, address and services of the caller's business."""
    profile = await load_tenant(session, tenant_id)
    if profile is None:
        raise ToolError("I couldn't find this business's details right now.")
    return {
        "name": profile.name,
        "address": profile.address,
        "timezone": profile.timezone,
        "services": [
            {"name": s.name, "price": s.price_text(), "duration_min": s.duration_min}
            for s in profile.services
        ],
    }


HANDLERS: dict[str, Handler] = {"get_business_info": get_business_info}
