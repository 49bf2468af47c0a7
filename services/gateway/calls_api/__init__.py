"""Tenant-scoped read API over call records (`/v1/calls`), post-call webhooks (`/v1/webhooks`)
and the tenant's analysis schema (`/v1/analysis/schema`)."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.calls_api import (
    analysis_routes,
    call_routes,
    recording_routes,
    webhook_routes,
)

ROUTERS: list[APIRouter] = [
    call_routes.router,
    recording_routes.router,
    webhook_routes.router,
    analysis_routes.router,
]
"""The routers of this package, in the order the docs list them."""
