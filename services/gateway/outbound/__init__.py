"""Outbound calls: the tenant API, the dialler loop, Twilio's callbacks for them, and the
answer webhook that starts the outbound conversation.

`ROUTERS` go into the gateway app; `lifecycle` (a router without routes) runs the dialler for
the app's lifetime (FastAPI merges router lifespans into the app's).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from services.gateway.outbound import api_routes, callbacks
from services.gateway.outbound.dialer import Dialer
from services.gateway.outbound.twilio_calls import TwilioCalls
from services.gateway.outbound.voice import outbound_voice
from shared.runtime.settings import Settings


@asynccontextmanager
async def _dialler(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    calls = TwilioCalls(settings)
    dialer = Dialer(sessions=app.state.sessions, settings=settings, calls=calls)
    app.state.outbound_calls = calls
    app.state.outbound_dialer = dialer
    stop = asyncio.Event()
    task = asyncio.create_task(dialer.run(stop))
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=5)


lifecycle = APIRouter(lifespan=_dialler)

ROUTERS: list[APIRouter] = [api_routes.router, callbacks.router, lifecycle]
"""The outbound routers, in the order the docs list them."""

__all__ = ["ROUTERS", "outbound_voice"]
