"""The overview (charts), bookings (a calendar per staff member, messages) and business pages."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from services.gateway.admin.store import Session, not_found
from services.gateway.console import business_queries, call_queries, charts
from services.gateway.console.assets import render
from services.gateway.console.viewer import CurrentViewer
from shared.tenancy.prompting import build_system_prompt
from shared.tenancy.tenant_directory import load_tenant

router = APIRouter(prefix="/console", include_in_schema=False)
TenantSlug = Annotated[str, Query(max_length=64, pattern=r"^[a-z0-9-]*$")]


@router.get("")
async def overview(
    request: Request,
    viewer: CurrentViewer,
    session: Session,
    days: Annotated[int, Query(ge=7, le=90)] = 14,
) -> HTMLResponse:
    """Calls per day, booking conversion, first-audio latency and cost per call, as charts."""
    figures = await call_queries.daily_figures(
        session, viewer.tenant_id, days, datetime.now(UTC).date()
    )
    labels = [f.day.strftime("%d %b") for f in figures]
    calls = sum(f.calls for f in figures)
    booked = sum(f.booked_calls for f in figures)
    svg = {
        "calls": charts.chart(
            "Calls per day, and calls that made a booking",
            labels,
            [
                charts.Series("calls", [float(f.calls) for f in figures]),
                charts.Series("booked", [float(f.booked_calls) for f in figures]),
            ],
            bars=True,
        ),
        "latency": charts.chart(
            "First-audio latency per day, ms (p50, p95)",
            labels,
            [
                charts.Series("p50 ms", [f.first_audio_p50_ms for f in figures]),
                charts.Series("p95 ms", [f.first_audio_p95_ms for f in figures]),
            ],
            bars=False,
        ),
        "cost": charts.chart(
            "Mean cost per call per day (minor units)",
            labels,
            [charts.Series("cost", [f.cost_per_call_minor for f in figures])],
            bars=False,
        ),
    }
    context = {
        "viewer": viewer,
        "page": "overview",
        "figures": figures,
        "svg": svg,
        "days": days,
        "calls": calls,
        "booked": booked,
        "conversion": None if calls == 0 else round(100 * booked / calls, 1),
    }
    return render(request, "overview.html", context)


@router.get("/bookings")
async def bookings(
    request: Request,
    viewer: CurrentViewer,
    session: Session,
    day: date | None = None,
    view: Literal["day", "week"] = "week",
) -> HTMLResponse:
    """A calendar per staff member (one day, or the week from `day`'s Monday) and messages."""
    tenants = await business_queries.tenants_of(session, viewer.tenant_id)
    zone = ZoneInfo(tenants[0].timezone if len(tenants) == 1 else "UTC")
    chosen = day or datetime.now(zone).date()
    first = chosen if view == "day" else chosen - timedelta(days=chosen.weekday())
    span = 1 if view == "day" else 7
    shown = [first + timedelta(days=n) for n in range(span)]
    calendars = [
        (tenant, await business_queries.calendars(session, tenant, first, span))
        for tenant in tenants
    ]
    context = {
        "viewer": viewer,
        "page": "bookings",
        "calendars": calendars,
        "days": shown,
        "view": view,
        "day": chosen,
        "prev": first - timedelta(days=span),
        "next": first + timedelta(days=span),
        "messages": await business_queries.messages(session, viewer.tenant_id),
    }
    return render(request, "bookings.html", context)


@router.get("/business")
async def business(
    request: Request, viewer: CurrentViewer, session: Session, tenant: TenantSlug = ""
) -> HTMLResponse:
    """The business's setup, read-only: the operator picks a tenant first."""
    tenants = await business_queries.tenants_of(session, viewer.tenant_id)
    if tenant:
        chosen = next((t for t in tenants if t.slug == tenant), None)
        if chosen is None:
            raise not_found("tenant")
    else:
        chosen = tenants[0] if len(tenants) == 1 else None
    setup = await business_queries.business_setup(session, chosen) if chosen else None
    profile = await load_tenant(session, chosen.id) if chosen else None
    context = {
        "viewer": viewer,
        "page": "business",
        "tenants": tenants,
        "setup": setup,
        "prompt": build_system_prompt(profile) if profile else "",
    }
    return render(request, "business.html", context)
