"""Pure-ASGI middleware bounding every request before a route parses it (so no route can
forget): a declared `Content-Length` over the limit is refused at once, a streamed or chunked
body is counted as it is read and cut off at the limit, and a Twilio webhook without an
`X-Twilio-Signature` header is refused before its body is read at all."""

from __future__ import annotations

import json
from dataclasses import dataclass

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TWILIO_PREFIX = "/twilio/"
SIGNATURE_HEADER = b"x-twilio-signature"


class BodyTooLargeError(HTTPException):
    """The body grew past the limit while it was read (FastAPI re-raises HTTPExceptions from
    body parsing, so this reaches the exception middleware as a 413, never a 400 or 500)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


@dataclass(frozen=True)
class EdgeLimits:
    """Largest body per kind of route, in bytes."""

    twilio_body_max: int
    api_body_max: int

    def limit_for(self, path: str) -> int:
        return self.twilio_body_max if path.startswith(TWILIO_PREFIX) else self.api_body_max


def _declared_length(scope: Scope) -> int | str | None:
    """The Content-Length header as an int, None when absent, or an error message."""
    values = [v for k, v in scope.get("headers", []) if k == b"content-length"]
    if not values:
        return None
    if len(set(values)) > 1:
        return "conflicting Content-Length headers"
    raw = values[0].decode("latin-1").strip()
    if not raw.isdigit() or len(raw) > 18:
        return "malformed Content-Length header"
    return int(raw)


def _has_nul(scope: Scope) -> bool:
    """A NUL in the path or query (raw or %00): no route may see it (Postgres cannot)."""
    query: bytes = scope.get("query_string", b"")
    raw_path: bytes = scope.get("raw_path") or b""
    path: str = scope.get("path", "")
    return "\x00" in path or any(b"\x00" in part or b"%00" in part for part in (query, raw_path))


def _has_signature(scope: Scope) -> bool:
    return any(k == SIGNATURE_HEADER and v.strip() for k, v in scope.get("headers", []))


async def _refuse(send: Send, status: int, detail: str | list[dict[str, object]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class EdgeLimitMiddleware:
    """Bound request bodies and demand a Twilio signature header before anything parses."""

    def __init__(self, app: ASGIApp, limits: EdgeLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.limits.limit_for(path)
        if path.startswith(TWILIO_PREFIX) and scope.get("method") == "POST":
            if not _has_signature(scope):
                await _refuse(
                    send, 403, "missing X-Twilio-Signature: webhooks must carry a signature"
                )
                return
        if _has_nul(scope):  # shaped like FastAPI's own 422
            error: dict[str, object] = {"type": "value_error", "loc": ["query"]}
            error["msg"] = "NUL is not allowed"
            await _refuse(send, 422, [error])
            return
        declared = _declared_length(scope)
        if isinstance(declared, str):
            await _refuse(send, 400, declared)
            return
        if declared is not None and declared > limit:
            await _refuse(send, 413, f"request body larger than {limit} bytes")
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLargeError as exc:  # raised where no exception handler runs
            if started:
                raise
            await _refuse(send, 413, str(exc.detail))
