"""`/v1/tenant`: the API key's own business and its booking policy."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.admin.auth import TenantId
from services.gateway.admin.schemas import AUTH_ERRORS, TenantOut, TenantPatch
from services.gateway.admin.store import Session, apply_changes, not_found
from shared.db.models import Tenant

router = APIRouter(
    prefix="/v1/tenant",
    tags=["tenant"],
    responses=AUTH_ERRORS,
)


async def _own_tenant(session: AsyncSession, tenant_id: str) -> Tenant:
    tenant: Tenant | None = await session.get(Tenant, tenant_id)
    if tenant is None:  # deleted after the key was checked
        raise not_found("tenant")
    return tenant


@router.get("", response_model=TenantOut, summary="Get the own tenant")
async def get_tenant(tenant_id: TenantId, session: Session) -> Tenant:
    """The business this API key belongs to."""
    return await _own_tenant(session, tenant_id)


@router.patch("", response_model=TenantOut, summary="Update the own tenant")
async def patch_tenant(body: TenantPatch, tenant_id: TenantId, session: Session) -> Tenant:
    """Change name, address, time zone, currency, policies or booking limits."""
    tenant = await _own_tenant(session, tenant_id)
    apply_changes(tenant, body.changes())
    await session.commit()
    return tenant
