"""Who is calling: the `Authorization: Bearer fd_...` API key, resolved to its tenant id."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.gateway.admin.store import Session
from shared.tenancy import api_keys

bearer = HTTPBearer(
    scheme_name="ApiKey",
    bearerFormat="fd_<32 url-safe characters>",
    description="A tenant's admin API key (`frontdesk apikey create --tenant SLUG`).",
    auto_error=False,
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def current_tenant(
    request: Request,
    session: Session,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> str:
    """The tenant id of the request's API key; 401 when it is missing, unknown or revoked.
    Looked up on every request (no cache): a revoked key stops working at once."""
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send 'Authorization: Bearer <key>'",
            headers=_CHALLENGE,
        )
    touch_s = request.app.state.settings.api_key_touch_s
    tenant_id = await api_keys.tenant_for_key(session, credentials.credentials, touch_s)
    if tenant_id is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid or revoked API key", headers=_CHALLENGE
        )
    return tenant_id


TenantId = Annotated[str, Depends(current_tenant)]
"""The caller's tenant id; every query of a route filters by it."""
