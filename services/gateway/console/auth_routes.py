"""Signing in and out of the console. The form takes a tenant API key (that business only) or
the operator key (every tenant); the answer is a signed, HttpOnly, SameSite=Strict cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.gateway.admin.store import Session
from services.gateway.console import session as cookies
from services.gateway.console.assets import render
from services.gateway.console.viewer import CurrentViewer, check_csrf, sign_in, signing_key
from shared.runtime.settings import Settings

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
