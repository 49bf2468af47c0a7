"""ASGI middleware counting HTTP requests and WebSocket sessions by route and outcome.

Pure ASGI (no BaseHTTPMiddleware): it only wraps `send`/`receive` to see the status code or
the close code, so streaming responses and WebSockets pass through untouched. Routes are
labelled by their template (`/admin/calls/{call_sid}`), never by the raw path.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.observability.metrics import Metrics

UNMATCHED = "unmatched"


def ws_outcome(code: int | None, *, by_client: bool) -> str:
    """A WebSocket session's outcome from its close code (a bounded label)."""
    if code is None:
        return "error"
    if code in (1000, 1001, 1005):
        return "disconnected" if by_client and code == 1001 else "normal"
    if code == 1008:
        return "rejected"
    if code == 1012:
        return "shutdown"
    return "disconnected" if by_client and code == 1006 else "error"


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class MetricsMiddleware:
    """Observes every request/session of the wrapped app into `metrics`."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route, method = _route(scope), str(scope.get("method", "GET"))
            self.metrics.http_requests.labels(route, method, str(status)).inc()
            self.metrics.http_duration.labels(route, method).observe(time.perf_counter() - began)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = time.perf_counter()
        closed: dict[str, Any] = {"code": None, "by_client": False}

        async def sending(message: Message) -> None:
            if message["type"] == "websocket.close" and closed["code"] is None:
                closed["code"] = int(message.get("code", 1000))
            await send(message)

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "websocket.disconnect" and closed["code"] is None:
                closed.update(code=int(message.get("code", 1005)), by_client=True)
            return message

        failed = False
        try:
            await self.app(scope, receiving, sending)
        except BaseException:
            failed = True
            raise
        finally:
            route = _route(scope)
            outcome = (
                "error" if failed else ws_outcome(closed["code"], by_client=closed["by_client"])
            )
            if closed["code"] is None and not failed:
                outcome = "normal"  # the app returned; the server closes with 1000
            self.metrics.ws_sessions.labels(route, outcome).inc()
            self.metrics.ws_duration.labels(route).observe(time.perf_counter() - began)
