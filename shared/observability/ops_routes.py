"""`/metrics`, `/healthz` and `/readyz`: mounted on the gateway and media apps, and served
alone on the workers' metrics port (`ops_server.py`)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.observability.health import Readiness, readiness_status
from shared.observability.metrics import CONTENT_TYPE_LATEST, Metrics


def ops_routes(metrics: Metrics, readiness: Readiness, replica: str) -> list[Route]:
    """The three routes, bound to one process's metrics and readiness."""

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "service": metrics.service, "replica": replica})

    async def readyz(_: Request) -> Response:
        ready, checks = await readiness.check()
        body = {"status": readiness_status(ready, checks), "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def scrape(_: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", scrape, methods=["GET"]),
    ]


def mount_ops(app: Starlette, metrics: Metrics, readiness: Readiness, replica: str) -> None:
    """Add the three routes to an app (kept out of its OpenAPI schema)."""
    for route in ops_routes(metrics, readiness, replica):
        app.router.routes.append(route)
