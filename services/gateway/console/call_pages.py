"""The calls list (filters, full-text search) and one call in detail: transcript beside the
recording, latency waterfall, tool calls, cost, analysis, webhook deliveries (redeliver)."""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Header, HTTPException, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from services.gateway.admin.params import ID_PATTERN
from services.gateway.admin.store import Session, not_found
from services.gateway.calls_api.call_detail import load_call_detail
from services.gateway.calls_api.recording_routes import serve_recording
from services.gateway.calls_api.webhook_routes import queue_again
from services.gateway.console import call_queries, charts
from services.gateway.console.assets import render
from services.gateway.console.viewer import CurrentViewer, check_csrf
from shared.db.models import Tenant, WebhookDelivery

router = APIRouter(prefix="/console/calls", include_in_schema=False)
CallSid = Annotated[str, Path(pattern=r"^CA[0-9a-fA-F]{32}$")]


@router.get("")
async def calls_page(
    request: Request,
    viewer: CurrentViewer,
    session: Session,
) -> HTMLResponse:
    """The calls list; an htmx request (the filter form) gets only the table."""
    try:
        filters = call_queries.CallFilters.model_validate(dict(request.query_params))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problems) from exc
    rows = await call_queries.list_calls(session, viewer.tenant_id, filters)

    def page_query(page: int) -> str:
        return urlencode({**dict(request.query_params), "page": str(page)})

    context = {
        "viewer": viewer,
        "rows": rows,
        "filters": filters,
        "page": "calls",
        "page_query": page_query,
    }
    partial = request.headers.get("HX-Request") == "true"
    return render(request, "_calls_table.html" if partial else "calls.html", context)


async def _deliveries(
    session: Session, tenant_id: str | None, call_sid: str
) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).where(WebhookDelivery.call_sid == call_sid)
    if tenant_id is not None:
        query = query.where(WebhookDelivery.tenant_id == tenant_id)
    rows = await session.scalars(query.order_by(WebhookDelivery.created_at.desc()))
    return list(rows.all())


@router.get("/{call_sid}")
async def call_page(
    request: Request, viewer: CurrentViewer, session: Session, call_sid: CallSid
) -> HTMLResponse:
    """One call: everything stored about it."""
    call = await call_queries.find_call(session, viewer.tenant_id, call_sid)
    if call is None:
        raise not_found("call")
    detail = await load_call_detail(session, call)
    scale = max((max(turn.stages_ms.values(), default=0.0) for turn in detail.turns), default=0.0)
    waterfall = [(turn, charts.waterfall(turn.stages_ms, scale)) for turn in detail.turns]
    tenant = await session.get(Tenant, call.tenant_id) if call.tenant_id else None
    context = {
        "viewer": viewer,
        "page": "calls",
        "call": detail,
        "tenant": tenant,
        "waterfall": waterfall,
        "scale_ms": scale,
        "deliveries": await _deliveries(session, viewer.tenant_id, call_sid),
        "pretty": lambda value: json.dumps(value, indent=1, ensure_ascii=False),
        "recording_url": None
        if detail.recording_duration_s is None
        else f"/console/calls/{call_sid}/recording",
    }
    return render(request, "call.html", context)


@router.get("/{call_sid}/recording")
async def recording(
    request: Request,
    viewer: CurrentViewer,
    session: Session,
    call_sid: CallSid,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    """The call's recording for the page's `<audio>` (the session cookie instead of a bearer
    key; Range requests for seeking), the same bytes as `GET /v1/calls/{sid}/recording`."""
    call = await call_queries.find_call(session, viewer.tenant_id, call_sid)
    if call is None:
        raise not_found("call")
    return await serve_recording(request, call, range_header)


@router.post("/{call_sid}/deliveries/{delivery_id}/redeliver")
async def redeliver(
    request: Request,
    viewer: CurrentViewer,
    session: Session,
    call_sid: CallSid,
    delivery_id: Annotated[str, Path(pattern=ID_PATTERN)],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Queue a delivery again (CSRF-checked). htmx gets the new status; a plain form post is
    redirected back to the call."""
    check_csrf(viewer, csrf or request.headers.get("X-CSRF-Token"))
    query = select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.call_sid == call_sid
    )
    if viewer.tenant_id is not None:
        query = query.where(WebhookDelivery.tenant_id == viewer.tenant_id)
    delivery = await session.scalar(query)
    if delivery is None:
        raise not_found("delivery")
    await queue_again(session, delivery)
    if request.headers.get("HX-Request") == "true":
        return HTMLResponse(f"{delivery.status} (queued again)")
    return RedirectResponse(f"/console/calls/{call_sid}", status.HTTP_303_SEE_OTHER)
