"""Tenant-scoped outbound-calls API: `POST /v1/outbound-calls` queues a call for the dialler,
`GET /v1/outbound-calls/{id}` shows its attempts and outcome.

The wanted time is local to the tenant and must be in the future. Each tenant may request at
most OUTBOUND_RATE_LIMIT calls per OUTBOUND_RATE_WINDOW_S (counted in Postgres under a
per-tenant advisory lock, so every gateway replica enforces the same limit); over it: 429 with
Retry-After.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.admin.auth import TenantId
from services.gateway.admin.params import ObjectId
from services.gateway.admin.schemas import AUTH_ERRORS, error_doc
from services.gateway.admin.store import Session, get_owned, invalid_body
from services.gateway.outbound.schemas import OutboundCallCreate, OutboundCallView
from shared.db.models import OutboundCallRequest, PhoneNumber, Tenant
from shared.runtime.settings import Settings

router = APIRouter(prefix="/v1/outbound-calls", tags=["outbound calls"], responses=AUTH_ERRORS)


async def _rate_limit_wait_s(session: AsyncSession, tenant_id: str, settings: Settings) -> int:
    """0 when the tenant may request another call now, else seconds until it may."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:t))"), {"t": tenant_id})
    window = timedelta(seconds=settings.outbound_rate_window_s)
    recent = (
        await session.scalars(
            select(OutboundCallRequest.created_at)
            .where(
                OutboundCallRequest.tenant_id == tenant_id,
                OutboundCallRequest.created_at > func.now() - window,
            )
            .order_by(OutboundCallRequest.created_at.desc())
            .limit(settings.outbound_rate_limit)
        )
    ).all()
    if len(recent) < settings.outbound_rate_limit:
        return 0
    now: datetime | None = await session.scalar(select(func.now()))
    assert now is not None
    frees_at: datetime = recent[-1] + window
    return max(1, math.ceil((frees_at - now).total_seconds()))


async def _calling_number(session: AsyncSession, tenant_id: str) -> str:
    number = await session.scalar(
        select(PhoneNumber.e164)
        .where(PhoneNumber.tenant_id == tenant_id)
        .order_by(PhoneNumber.e164)
    )
    if number is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "the tenant has no phone number to call from")
    return number


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=OutboundCallView)
async def create_outbound_call(
    body: OutboundCallCreate,
    tenant_id: TenantId,
    session: Session,
    request: Request,
    response: Response,
) -> OutboundCallView:
    """Queue an outbound call; the dialler places it at once (202: it runs in the background)."""
    settings: Settings = request.app.state.settings
    tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None
    local_now = datetime.now(ZoneInfo(tenant.timezone)).replace(tzinfo=None)
    if body.details.date_time <= local_now:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "details", "date_time"),
                    "msg": f"must be in the future (it is now {local_now:%Y-%m-%dT%H:%M}"
                    f" in {tenant.timezone})",
                    "input": body.details.date_time.isoformat(timespec="minutes"),
                }
            ]
        )
    max_retries = settings.outbound_max_retries
    if body.max_retries is not None:
        if body.max_retries > max_retries:
            raise invalid_body("max_retries", f"must be at most {max_retries}", body.max_retries)
        max_retries = body.max_retries
    delay = settings.outbound_retry_delay_s
    if body.retry_delay_s is not None:
        if body.retry_delay_s < settings.outbound_min_retry_delay_s:
            raise invalid_body(
                "retry_delay_s",
                f"must be at least {settings.outbound_min_retry_delay_s}",
                body.retry_delay_s,
            )
        delay = body.retry_delay_s
    from_number = await _calling_number(session, tenant_id)
    wait_s = await _rate_limit_wait_s(session, tenant_id, settings)
    if wait_s:
        await session.rollback()
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"at most {settings.outbound_rate_limit} outbound calls per"
            f" {settings.outbound_rate_window_s} s; try again in {wait_s} s",
            headers={"Retry-After": str(wait_s)},
        )
    row = OutboundCallRequest(
        tenant_id=tenant_id,
        purpose=body.purpose,
        details=body.details.model_dump(mode="json"),
        from_number=from_number,
        to_number=body.details.restaurant_number,
        status="queued",
        attempts=0,
        max_attempts=1 + max_retries,
        retry_delay_s=delay,
        next_attempt_at=datetime.now(UTC),
        twilio_call_sids=[],
        outcome_details={},
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)  # server defaults, read before the commit: once committed, a
    view = OutboundCallView.of(row)  # dialer (any replica) may take it and say "dialing"
    await session.commit()
    request.app.state.outbound_dialer.wake()
    response.headers["Location"] = f"/v1/outbound-calls/{view.id}"
    return view


@router.get(
    "/{request_id}",
    response_model=OutboundCallView,
    responses=error_doc(404, "No such outbound call for this tenant."),
)
async def get_outbound_call(
    request_id: ObjectId, tenant_id: TenantId, session: Session
) -> OutboundCallView:
    """One outbound call request of the tenant (404 for another tenant's)."""
    row = await get_owned(session, OutboundCallRequest, tenant_id, "outbound call", id=request_id)
    return OutboundCallView.of(row)
