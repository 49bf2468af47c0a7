"""The gateway's ASGI app run in this process (lifespan entered) against the test session's
real Redis and Postgres, with an httpx client speaking to it over ASGI (no socket)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from services.gateway.app import create_app
from shared.runtime.settings import Settings
from tests.conftest import Infra

BASE = "http://gateway.test"
AUTH_TOKEN = "in-process-auth-token"


def gateway_settings(infra: Infra, **overrides: Any) -> Settings:
    """Settings of an in-process gateway (public URL = the ASGI client's base URL)."""
    values: dict[str, Any] = {
        "redis_url": infra.redis_url,
        "database_url": infra.database_url,
        "twilio_auth_token": AUTH_TOKEN,
        "stream_token_secret": "in-process-stream-secret",
        "public_gateway_url": BASE,
    }
    return Settings(**(values | overrides))


@asynccontextmanager
async def gateway_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client bound to a freshly created gateway app (lifespan running)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield client
