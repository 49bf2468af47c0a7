"""Tenant-scoped admin REST API (`/v1/...`): every route resolves the bearer API key to one
tenant and only ever reads or changes that tenant's rows."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.admin.routes import (
    bookings,
    catalog,
    hours,
    knowledge,
    messages,
    numbers,
    operator_keys,
    tenant,
)

ROUTERS: list[APIRouter] = [
    tenant.router,
    numbers.router,
    catalog.services_router,
    catalog.staff_router,
    hours.hours_router,
    hours.closures_router,
    knowledge.router,
    bookings.router,
    messages.router,
    operator_keys.router,
]
"""The admin API's routers, in the order the docs list them."""
