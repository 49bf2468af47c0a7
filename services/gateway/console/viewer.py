"""Who is looking at the console: the session cookie resolved, on every request, to one tenant
(its API key still unrevoked) or to the operator (the operator key unchanged); and signing in
and out. The form takes a tenant API key (that business only) or the operator key (every
tenant); the answer is a signed, HttpOnly, SameSite=Strict cookie."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.admin.store import Session
from services.gateway.console import session as cookies
from services.gateway.console.assets import render
from shared.db.models import ApiKey, Tenant
from shared.runtime.settings import Settings
from shared.tenancy import api_keys


@dataclass(frozen=True)
class Viewer:
    """The signed-in tenant (tenant_id set) or the operator (tenant_id None: every tenant)."""

    tenant_id: str | None
    label: str
    csrf: str

    @property
    def operator(self) -> bool:
        return self.tenant_id is None


class SignInRequired(HTTPException):
    """No valid session: pages redirect to the sign-in form, fragments answer 401."""

    def __init__(self) -> None:
        super().__init__(status.HTTP_401_UNAUTHORIZED, "sign in first")


def signing_key(settings: Settings) -> bytes:
    """The key that signs this gateway's console cookies."""
    return cookies.secret_from(settings.console_session_secret, settings.stream_token_secret)


def operator_fingerprint(settings: Settings) -> str:
    """A short hash of the operator key: an operator session ends when the key changes."""
    return hashlib.sha256(b"console:" + settings.operator_api_key.encode()).hexdigest()[:32]


async def sign_in(
    session: AsyncSession, settings: Settings, key: str
) -> cookies.SessionData | None:
    """A new session for a tenant API key or the operator key; None for anything else."""
    ttl = settings.console_session_ttl_s
    expected = settings.operator_api_key
    if expected and hmac.compare_digest(key.encode(), expected.encode()):
        return cookies.new_session(operator_fingerprint(settings), "", True, ttl)
    tenant_id = await api_keys.tenant_for_key(session, key, settings.api_key_touch_s)
    if tenant_id is None:
        return None
    key_id = await session.scalar(
        select(ApiKey.id).where(ApiKey.key_sha256 == api_keys.hash_key(key))
    )
    return cookies.new_session(str(key_id), tenant_id, False, ttl)


async def resolve(request: Request, session: AsyncSession) -> Viewer | None:
    """The viewer of a request, or None when its cookie is missing, forged, expired, or names a
    revoked key or a changed operator key."""
    settings: Settings = request.app.state.settings
    data = cookies.verify(request.cookies.get(cookies.COOKIE), signing_key(settings))
    if data is None:
        return None
    if data.operator:
        if not settings.operator_api_key or not hmac.compare_digest(
            data.key_id, operator_fingerprint(settings)
        ):
            return None
        return Viewer(None, "Operator (all tenants)", data.csrf)
    row = (
        await session.execute(
            select(Tenant.name)
            .join(ApiKey, ApiKey.tenant_id == Tenant.id)
            .where(
                ApiKey.id == data.key_id,
                ApiKey.tenant_id == data.tenant_id,
                ApiKey.revoked_at.is_(None),
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return Viewer(data.tenant_id, str(row.name), data.csrf)


async def current_viewer(request: Request, session: Session) -> Viewer:
    """Dependency: the signed-in viewer, else `SignInRequired`."""
    viewer = await resolve(request, session)
    if viewer is None:
        raise SignInRequired()
    return viewer


CurrentViewer = Annotated[Viewer, Depends(current_viewer)]
"""The viewer; every console query filters by `viewer.tenant_id` unless it is the operator."""


def check_csrf(viewer: Viewer, given: str | None) -> None:
    """403 unless `given` is the session's CSRF token (forms and htmx send it)."""
    if not given or not hmac.compare_digest(viewer.csrf.encode(), given.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")


router = APIRouter(prefix="/console", include_in_schema=False)
KEY_MAX = 256


@router.get("/sign-in")
async def sign_in_form(request: Request) -> HTMLResponse:
    """The sign-in form."""
    return render(request, "sign_in.html", {"error": ""})


@router.post("/sign-in")
async def sign_in_post(
    request: Request,
    session: Session,
    key: Annotated[str, Form(max_length=KEY_MAX)] = "",
) -> Response:
    """Check the key; on success set the session cookie and go to the overview (303)."""
    settings: Settings = request.app.state.settings
    data = await sign_in(session, settings, key.strip()) if key.strip() else None
    if data is None:
        return render(
            request,
            "sign_in.html",
            {"error": "That key is not valid (unknown, revoked or mistyped)."},
            status.HTTP_401_UNAUTHORIZED,
        )
    response = RedirectResponse("/console", status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        cookies.COOKIE,
        cookies.sign(data, signing_key(settings)),
        max_age=settings.console_session_ttl_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.console_secure_cookie,
    )
    return response


@router.post("/sign-out")
async def sign_out(
    viewer: CurrentViewer, csrf: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    """Forget the session cookie (CSRF-checked, so no other site can sign a viewer out)."""
    check_csrf(viewer, csrf)
    response = RedirectResponse("/console/sign-in", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(cookies.COOKIE, path="/")
    return response
