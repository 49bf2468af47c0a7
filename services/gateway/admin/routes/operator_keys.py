"""`/v1/operator/api-keys`: the operator lists, creates and revokes tenants' admin API keys
(the same as `frontdesk apikey list|create|revoke`). Authenticated by OPERATOR_API_KEY; with
that setting empty the operator API is off (every request is a 401)."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from services.gateway.admin.params import ObjectId
from services.gateway.admin.schemas import InputModel, error_doc
from services.gateway.admin.store import Session, invalid_body, not_found
from shared.tenancy import api_keys

operator_bearer = HTTPBearer(
    scheme_name="OperatorKey",
    description="The platform operator's key (setting OPERATOR_API_KEY).",
    auto_error=False,
)
SLUG = r"^[a-z0-9][a-z0-9-]{0,63}$"


async def operator(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(operator_bearer)],
) -> None:
    """401 unless the request carries the configured operator key."""
    expected: str = request.app.state.settings.operator_api_key
    given = credentials.credentials if credentials is not None else ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong operator key (or OPERATOR_API_KEY is not set)",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter(
    prefix="/v1/operator/api-keys",
    tags=["operator"],
    dependencies=[Depends(operator)],
    responses=error_doc(401, "Missing or wrong operator key."),
)


class ApiKeyOut(BaseModel):
    """A key as the operator sees it (never the key itself or its hash)."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    tenant_slug: str
    name: str
    created_at: datetime
    last_used_at: datetime | None = Field(description="Last use, to within API_KEY_TOUCH_S.")
    revoked_at: datetime | None


class ApiKeyIn(InputModel):
    """A new key for a tenant."""

    tenant: str = Field(pattern=SLUG, description="The tenant's slug.")
    name: str = Field("default", min_length=1, max_length=api_keys.NAME_MAX)


class ApiKeyCreated(BaseModel):
    """The new key: shown only in this response."""

    key: str
    tenant_slug: str
    name: str


@router.get("", response_model=list[ApiKeyOut], summary="List API keys")
async def list_api_keys(
    session: Session,
    tenant: Annotated[str | None, Query(pattern=SLUG, description="Only this tenant's.")] = None,
) -> list[api_keys.KeyInfo]:
    """Every key, oldest first, revoked ones included."""
    return await api_keys.list_keys(session, tenant)


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key",
)
async def create_api_key(session: Session, body: ApiKeyIn) -> ApiKeyCreated:
    """A new key for the tenant; the response is the only place it is ever shown."""
    try:
        key = await api_keys.create_for_tenant(session, body.tenant, body.name)
    except api_keys.UnknownTenantError as exc:
        raise invalid_body("tenant", str(exc), body.tenant) from exc
    return ApiKeyCreated(key=key, tenant_slug=body.tenant, name=body.name)


@router.delete(
    "/{key_id}",
    response_model=ApiKeyOut,
    summary="Revoke an API key",
    responses=error_doc(404, "No such key."),
)
async def revoke_api_key(session: Session, key_id: ObjectId) -> api_keys.KeyInfo:
    """Revoke the key: the next request with it gets a 401. Revoking twice is harmless."""
    info = await api_keys.revoke(session, key_id)
    if info is None:
        raise not_found("API key")
    return info
