"""The console's templates and static files, the vendored browser libraries (installed by
`npm ci` from web/package-lock.json, never a CDN) and the offline OpenAPI page at `/docs`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from shared.runtime.settings import Settings

HERE = Path(__file__).parent
REPO = HERE.parents[2]
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

VENDOR = {  # URL name: path under the npm packages folder
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "sse.min.js": "htmx-ext-sse/dist/sse.min.js",
    "swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
    "favicon.png": "swagger-ui-dist/favicon-32x32.png",
}
"""Every vendored file the gateway serves (nothing else of node_modules is reachable)."""
OWN = {"console.css", "console.js"}
CACHE = {"Cache-Control": "public, max-age=3600"}

router = APIRouter(include_in_schema=False)


def vendor_dir(settings: Settings) -> Path:
    """Where the npm packages are (a relative setting is relative to the repository)."""
    path = Path(settings.console_assets_dir)
    return path if path.is_absolute() else REPO / path


def missing_vendor_files(settings: Settings) -> list[str]:
    """Vendored files that are not installed (run `make setup`, which runs `npm ci`)."""
    root = vendor_dir(settings)
    return [name for name, rel in VENDOR.items() if not (root / rel).is_file()]


def render(request: Request, name: str, context: dict[str, Any], code: int = 200) -> HTMLResponse:
    """A template rendered with the request (autoescaped)."""
    return templates.TemplateResponse(request, name, context, status_code=code)


@router.get("/console/vendor/{name}")
async def vendor_file(request: Request, name: str) -> Response:
    """A vendored library file, from the packages `npm ci` installed."""
    rel = VENDOR.get(name)
    if rel is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such asset")
    path = vendor_dir(request.app.state.settings) / rel
    if not path.is_file():
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"{name} is not installed: run `make setup` (npm ci)"
        )
    return FileResponse(path, headers=CACHE)


@router.get("/console/static/{name}")
async def own_file(name: str) -> Response:
    """The console's own stylesheet and script."""
    if name not in OWN:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such asset")
    return FileResponse(STATIC / name, headers=CACHE)


@router.get("/docs")
async def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI over /openapi.json, every file served by this gateway."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url or "/openapi.json",
        title=f"{request.app.title} API",
        swagger_js_url="/console/vendor/swagger-ui-bundle.js",
        swagger_css_url="/console/vendor/swagger-ui.css",
        swagger_favicon_url="/console/vendor/favicon.png",
    )
