"""The console's routes, mounted on the gateway app. The pages read the same Postgres rows as
the read API and the live call logs in Redis; every query is scoped to the signed-in tenant
(or every tenant for the operator)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from services.gateway.console import assets, call_pages, live, pages, viewer
from services.gateway.console.viewer import SignInRequired

ROUTERS: list[APIRouter] = [
    assets.router,
    viewer.router,
    pages.router,
    live.router,
    call_pages.router,
]
"""The console's routers (none of them in the OpenAPI document)."""


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    """A page asked for without a session goes to the sign-in form; fragments, streams and
    posts get a 401."""
    wants_page = (
        request.method == "GET"
        and request.headers.get("HX-Request") != "true"
        and "text/html" in request.headers.get("accept", "")
    )
    if wants_page:
        return RedirectResponse("/console/sign-in", status_code=303)
    return JSONResponse({"detail": "sign in first"}, status_code=401)


def mount(app: FastAPI) -> None:
    """Add the console's routes and its sign-in redirect to the gateway app."""
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(SignInRequired, _sign_in_required)
