"""Tenant-scoped admin REST API (`/v1/...`): every route resolves the bearer API key to one
tenant and only ever reads or changes that tenant's rows."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.admin import (
    booking_routes,
    catalog_routes,
    hours_routes,
    knowledge_routes,
    message_routes,
    numbers_routes,
    tenant_routes,
)

ROUTERS: list[APIRouter] = [
    tenant_routes.router,
    numbers_routes.router,
    catalog_routes.services_router,
    catalog_routes.staff_router,
    hours_routes.hours_router,
    hours_routes.closures_router,
    knowledge_routes.router,
    booking_routes.router,
    message_routes.router,
]
"""The admin API's routers, in the order the docs list them."""
