"""Tools that describe the business: get_business_info, list_services."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.tools.handlers.context import ToolContext, ToolError
from services.tools.handlers.lookup import tenant_of
from services.tools.scheduling import spoken
from services.tools.scheduling.calendar_data import services_of
from shared.tenancy.tenant_directory import load_tenant
from shared.tenancy.tool_specs import NoArgs


async def get_business_info(
    session: AsyncSession, ctx: ToolContext, args: NoArgs
) -> dict[str, Any]:
    """Name, address and services of the caller's business."""
    profile = await load_tenant(session, ctx.tenant_id) if ctx.tenant_id else None
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


async def list_services(session: AsyncSession, ctx: ToolContext, args: NoArgs) -> dict[str, Any]:
    """Every service with its spoken price and duration."""
    tenant = await tenant_of(session, ctx)
    services = await services_of(session, tenant.id)
    return {
        "services": [
            {
                "name": s.name,
                "price": spoken.price(s.price_minor, s.currency),
                "duration": spoken.duration(s.duration_min),
                **({"description": s.description} if s.description else {}),
            }
            for s in services
        ]
    }
