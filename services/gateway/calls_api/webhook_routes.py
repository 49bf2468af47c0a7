"""`/v1/webhooks`: endpoints that receive signed `call.completed` events, the delivery log,
the dead-letter list (`status=failed`) and redelivery."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.admin.auth import TenantId
from services.gateway.admin.params import Limit, ObjectId, Offset
from services.gateway.admin.schemas import AUTH_ERRORS, error_doc
from services.gateway.admin.store import Session, invalid_body, not_found
from services.gateway.calls_api.schemas import (
    DeliveryAttemptOut,
    DeliveryDetail,
    DeliveryOut,
    DeliveryStatus,
    WebhookEndpointCreated,
    WebhookEndpointIn,
    WebhookEndpointOut,
    WebhookEndpointPatch,
)
from shared.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from shared.runtime.outbound_guard import UnsafeUrlError, UrlPolicy, check_url

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=AUTH_ERRORS)
NOT_FOUND = error_doc(404, "No such object for this tenant.")


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


async def _reachable_url(request: Request, url: str) -> str:
    """`url` when its host resolves only to addresses outbound requests may reach, else 422
    (loopback, private, link-local, metadata...: the recorder would be posting inside)."""
    try:
        await check_url(url, UrlPolicy.from_settings(request.app.state.settings))
    except UnsafeUrlError as exc:
        raise invalid_body("url", f"url refused: {exc}", url) from exc
    return url


@router.get("", response_model=list[WebhookEndpointOut], summary="List endpoints")
async def list_endpoints(tenant_id: TenantId, session: Session) -> list[WebhookEndpoint]:
    """The tenant's webhook endpoints (without secrets)."""
    rows = await session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.tenant_id == tenant_id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return list(rows.all())


@router.post(
    "",
    response_model=WebhookEndpointCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Add an endpoint",
)
async def create_endpoint(
    tenant_id: TenantId, session: Session, body: WebhookEndpointIn, request: Request
) -> WebhookEndpoint:
    """A new endpoint; the response holds its signing secret, shown only this once. The URL's
    host must resolve to public addresses only (422 otherwise)."""
    endpoint = WebhookEndpoint(
        tenant_id=tenant_id,
        url=await _reachable_url(request, str(body.url)),
        description=body.description,
        active=body.active,
        secret=_new_secret(),
    )
    session.add(endpoint)
    await session.commit()
    await session.refresh(endpoint)
    return endpoint


@router.get("/deliveries", response_model=list[DeliveryOut], summary="List deliveries")
async def list_deliveries(
    tenant_id: TenantId,
    session: Session,
    status: Annotated[
        DeliveryStatus | None, Query(description="failed = the dead-letter list.")
    ] = None,
    call_sid: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[WebhookDelivery]:
    """Deliveries, newest first."""
    query = select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if call_sid is not None:
        query = query.where(WebhookDelivery.call_sid == call_sid)
    rows = await session.scalars(
        query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all())


async def _owned_delivery(session: Session, tenant_id: str, delivery_id: str) -> WebhookDelivery:
    delivery = await session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.tenant_id == tenant_id
        )
    )
    if delivery is None:
        raise not_found("delivery")
    return delivery


@router.get(
    "/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    summary="One delivery with its attempts",
    responses=NOT_FOUND,
)
async def get_delivery(
    tenant_id: TenantId, session: Session, delivery_id: ObjectId
) -> DeliveryDetail:
    """The delivery and every attempt made (the delivery log)."""
    delivery = await _owned_delivery(session, tenant_id, delivery_id)
    attempts = await session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery.id)
        .order_by(WebhookAttempt.attempt)
    )
    return DeliveryDetail(
        **DeliveryOut.model_validate(delivery).model_dump(),
        attempt_log=[DeliveryAttemptOut.model_validate(a) for a in attempts.all()],
    )


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Deliver again",
    responses=NOT_FOUND,
)
async def redeliver(
    tenant_id: TenantId, session: Session, delivery_id: ObjectId
) -> WebhookDelivery:
    """Queue the same event (same event id) for another full round of attempts, now."""
    delivery = await _owned_delivery(session, tenant_id, delivery_id)
    await queue_again(session, delivery)
    return delivery


async def queue_again(session: AsyncSession, delivery: WebhookDelivery) -> None:
    """Give a delivery another full round of attempts, starting now (also the console's
    redeliver button)."""
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = func.now()
    delivery.delivered_at = None
    await session.commit()
    await session.refresh(delivery)


async def _owned_endpoint(session: Session, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.tenant_id == tenant_id
        )
    )
    if endpoint is None:
        raise not_found("webhook endpoint")
    return endpoint


@router.patch(
    "/{endpoint_id}",
    response_model=WebhookEndpointOut,
    summary="Change an endpoint",
    responses=NOT_FOUND,
)
async def update_endpoint(
    tenant_id: TenantId,
    session: Session,
    endpoint_id: ObjectId,
    body: WebhookEndpointPatch,
    request: Request,
) -> WebhookEndpoint:
    """Change the URL (checked like a new one), description or whether it is active."""
    endpoint = await _owned_endpoint(session, tenant_id, endpoint_id)
    if body.url is not None:
        endpoint.url = await _reachable_url(request, str(body.url))
    if body.description is not None:
        endpoint.description = body.description
    if body.active is not None:
        endpoint.active = body.active
    await session.commit()
    return endpoint


@router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove an endpoint",
    responses=NOT_FOUND,
)
async def delete_endpoint(tenant_id: TenantId, session: Session, endpoint_id: ObjectId) -> None:
    """Remove the endpoint and its deliveries."""
    endpoint = await _owned_endpoint(session, tenant_id, endpoint_id)
    await session.delete(endpoint)
    await session.commit()
