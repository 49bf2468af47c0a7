"""Helpers for the booking/scheduling integration tests (no tests here): a tenant built with
the ORM models, calls in the real call log, and tool calls run through the real executor."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tools.executor import ToolsDeps, execute
from shared.bus.streams import CallLog
from shared.contract import events as ev
from shared.db.engine import make_engine, make_sessions
from shared.db.models import (
    Booking,
    Closure,
    OpeningHours,
    Resource,
    ResourceService,
    Service,
    Tenant,
)

NOW = datetime(2031, 1, 6, 8, 0, tzinfo=UTC)  # Monday 6 January 2031, 08:00 in London (GMT)
WEEKDAYS_9_TO_5 = {d: [(time(9), time(17))] for d in range(5)}


@dataclass
class StaffSpec:
    """A resource of a test tenant."""

    name: str
    kind: str = "staff"
    capacity: int = 1
    hours: dict[int, list[tuple[time, time]]] | None = None  # None: business hours
    services: list[str] | None = None  # None: performs every service


@dataclass
class Shop:
    """Ids of a test tenant's rows."""

    tenant_id: str
    services: dict[str, str]
    resources: dict[str, int]


@dataclass
class Desk:
    """Runs tool calls through the executor against real Redis and Postgres."""

    deps: ToolsDeps
    sessions: async_sessionmaker[AsyncSession]

    async def shop(
        self,
        *,
        staff: list[StaffSpec],
        services: list[tuple[str, int, int, int]] | None = None,  # name, minutes, pence, buffer
        hours: dict[int, list[tuple[time, time]]] | None = None,
        closures: list[tuple[date, date, str, str | None]] | None = None,
        tz: str = "Europe/London",
        min_notice_min: int = 60,
        slot_step_min: int = 15,
        horizon_days: int = 60,
    ) -> Shop:
        """A tenant with services, resources, hours and closures."""
        slug = f"shop-{uuid.uuid4().hex[:10]}"
        async with self.sessions() as session:
            tenant = Tenant(
                slug=slug,
                name=f"Shop {slug}",
                address="1 Test Street",
                timezone=tz,
                min_notice_min=min_notice_min,
                slot_step_min=slot_step_min,
                horizon_days=horizon_days,
            )
            session.add(tenant)
            await session.flush()
            made_services = {
                name: Service(
                    tenant_id=tenant.id,
                    name=name,
                    duration_min=minutes,
                    price_minor=pence,
                    buffer_min=buffer,
                    currency="GBP",
                )
                for name, minutes, pence, buffer in (services or [("Men's Haircut", 30, 2500, 0)])
            }
            session.add_all(made_services.values())
            for weekday, intervals in (hours or WEEKDAYS_9_TO_5).items():
                for opens, closes in intervals:
                    session.add(
                        OpeningHours(
                            tenant_id=tenant.id, weekday=weekday, opens=opens, closes=closes
                        )
                    )
            made_resources: dict[str, Resource] = {}
            for spec in staff:
                resource = Resource(
                    tenant_id=tenant.id, name=spec.name, kind=spec.kind, capacity=spec.capacity
                )
                session.add(resource)
                await session.flush()
                made_resources[spec.name] = resource
                for weekday, intervals in (spec.hours or {}).items():
                    for opens, closes in intervals:
                        session.add(
                            OpeningHours(
                                tenant_id=tenant.id,
                                resource_id=resource.id,
                                weekday=weekday,
                                opens=opens,
                                closes=closes,
                            )
                        )
                for service_name in spec.services or []:
                    session.add(
                        ResourceService(
                            resource_id=resource.id, service_id=made_services[service_name].id
                        )
                    )
            for starts_on, ends_on, reason, resource_name in closures or []:
                session.add(
                    Closure(
                        tenant_id=tenant.id,
                        resource_id=made_resources[resource_name].id if resource_name else None,
                        starts_on=starts_on,
                        ends_on=ends_on,
                        reason=reason,
                    )
                )
            await session.commit()
            return Shop(
                tenant_id=tenant.id,
                services={n: s.id for n, s in made_services.items()},
                resources={n: r.id for n, r in made_resources.items()},
            )

    async def call(self, shop: Shop, caller: str) -> str:
        """A new inbound call from `caller`; returns its CallSid."""
        call_sid = "CA" + uuid.uuid4().hex
        await self.deps.log.append(
            ev.CallStarted(
                call_sid=call_sid,
                tenant_id=shop.tenant_id,
                from_number=caller,
                to_number="+441632960999",
            )
        )
        return call_sid

    async def request(
        self,
        call_sid: str,
        shop: Shop,
        name: str,
        arguments: dict[str, Any] | str,
        tool_call_id: str | None = None,
    ) -> tuple[str, str]:
        """Append a ToolRequested; returns (entry id, tool call id)."""
        tool_call_id = tool_call_id or "call_" + uuid.uuid4().hex
        entry_id = await self.deps.log.append(
            ev.ToolRequested(
                call_sid=call_sid,
                tenant_id=shop.tenant_id,
                turn_id=1,
                tool_call_id=tool_call_id,
                name=name,
                arguments=arguments if isinstance(arguments, str) else json.dumps(arguments),
            )
        )
        return entry_id, tool_call_id

    async def results(self, call_sid: str, tool_call_id: str) -> list[ev.ToolResult]:
        """Every ToolResult appended for a tool call id, in log order."""
        return [
            e
            for _, e in await self.deps.log.entries(call_sid)
            if isinstance(e, ev.ToolResult) and e.tool_call_id == tool_call_id
        ]

    async def tool(
        self, call_sid: str, shop: Shop, name: str, arguments: dict[str, Any] | str
    ) -> tuple[bool, dict[str, Any]]:
        """Run one tool call through the executor; returns (ok, parsed content)."""
        entry_id, tool_call_id = await self.request(call_sid, shop, name, arguments)
        await execute(self.deps, call_sid, entry_id)
        (result,) = await self.results(call_sid, tool_call_id)
        content = json.loads(result.content)
        assert isinstance(content, dict)
        return result.ok, content

    async def confirmed(self, shop: Shop) -> list[Booking]:
        """The tenant's confirmed bookings, by start."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Booking)
                .where(Booking.tenant_id == shop.tenant_id, Booking.status == "confirmed")
                .order_by(Booking.starts_at)
            )
            return list(rows)

    async def count(self, model: Any, *where: Any) -> int:
        """Rows of `model` matching `where`."""
        async with self.sessions() as session:
            total = await session.scalar(select(func.count()).select_from(model).where(*where))
            return int(total or 0)


async def open_desk(database_url: str, redis: Redis) -> AsyncIterator[Desk]:
    """A Desk with its own engine (a pool big enough for the concurrency tests)."""
    engine = make_engine(database_url, pool_size=25)
    sessions = make_sessions(engine)
    try:
        yield Desk(
            deps=ToolsDeps(log=CallLog(redis, 16), sessions=sessions, clock=lambda: NOW),
            sessions=sessions,
        )
    finally:
        await engine.dispose()
