"""Find the tenant, service and staff a caller named (case-insensitive, forgiving of
punctuation), with errors that list the valid names."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from services.tools.handlers.context import ToolContext, ToolError
from services.tools.scheduling import spoken
from shared.db.models import Resource, Service, Tenant

T = TypeVar("T")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def _key(name: str) -> str:
    return _NOT_ALNUM.sub("", name.lower().replace("'s", "s"))


def match_name(items: Sequence[T], name: str, name_of: Callable[[T], str]) -> T | None:
    """The item called `name`: exact (ignoring case and punctuation), else the only item whose
    name contains it or whose first word is it; None when there is no single match."""
    wanted = _key(name)
    if not wanted:
        return None
    exact = [i for i in items if _key(name_of(i)) == wanted]
    if len(exact) == 1:
        return exact[0]
    partial = [
        i
        for i in items
        if wanted in _key(name_of(i)) or _key(name_of(i).split()[0] if name_of(i) else "") == wanted
    ]
    return partial[0] if len(partial) == 1 else None


async def tenant_of(session: AsyncSession, ctx: ToolContext) -> Tenant:
    """The business this call belongs to."""
    tenant = await session.get(Tenant, ctx.tenant_id) if ctx.tenant_id else None
    if tenant is None:
        raise ToolError("I couldn't find this business's details right now.")
    return tenant


def pick_service(services: Sequence[Service], name: str) -> Service:
    """The service the caller named, or an error listing what the business offers."""
    found = match_name(services, name, lambda s: s.name)
    if found is not None:
        return found
    if not services:
        raise ToolError("This business has no bookable services set up.")
    offered = spoken.names([s.name for s in services])
    raise ToolError(f"We don't offer '{name}'. The services are: {offered}.")


def pick_staff(resources: Sequence[Resource], name: str, service: Service) -> Resource:
    """The staff member (or resource) the caller named, among those who do `service`."""
    found = match_name(resources, name, lambda r: r.name)
    if found is not None:
        return found
    if not resources:
        raise ToolError(f"Nobody is available for {service.name} at the moment.")
    team = spoken.names([r.name for r in resources])
    raise ToolError(f"'{name}' doesn't do {service.name} here. You can book with {team}.")
