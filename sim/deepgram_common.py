"""Helpers shared by the Deepgram STT and TTS simulators (auth, errors, CLI)."""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import uvicorn
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.websockets import WebSocket

AUTH_SCHEMES = ("token", "bearer")


def new_request_id() -> str:
    return str(uuid.uuid4())


def model_uuid_for(model: str) -> str:
    """Stable fake model uuid derived from the model name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"deepgram-sim:{model}"))


def credentials_ok(headers: Mapping[str, str], api_key: str) -> bool:
    """`Authorization: Token|Bearer <key>` (scheme case-insensitive) or the
    `Sec-WebSocket-Protocol: token, <key>` browser form."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in AUTH_SCHEMES and value.strip() == api_key:
        return True
    protocols = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
    return len(protocols) == 2 and protocols[0].lower() in AUTH_SCHEMES and protocols[1] == api_key


def subprotocol_for(headers: Mapping[str, str]) -> str | None:
    """Subprotocol to echo when the client authenticated via Sec-WebSocket-Protocol."""
    protocols = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
    if len(protocols) == 2 and protocols[0].lower() in AUTH_SCHEMES:
        return protocols[0]
    return None


def error_response(status: int, err_code: str, message: str, request_id: str) -> Response:
    """Deepgram-style HTTP error: JSON body plus `dg-error` / `dg-request-id` headers."""
    body = {"err_code": err_code, "err_msg": message, "request_id": request_id}
    return Response(
        content=json.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"dg-error": message, "dg-request-id": request_id},
    )


async def deny(websocket: WebSocket, status: int, err_code: str, message: str, rid: str) -> None:
    """Reject a WebSocket handshake with a plain HTTP response (before accept)."""
    await websocket.send_denial_response(error_response(status, err_code, message, rid))


def auth_error(api_key: str, headers: Mapping[str, str], rid: str) -> Response | None:
    if credentials_ok(headers, api_key):
        return None
    return error_response(401, "INVALID_AUTH", "Invalid credentials.", rid)


class QueryError(ValueError):
    """A query parameter is invalid (-> HTTP 400)."""


def parse_bool(query: Mapping[str, str], name: str, default: bool) -> bool:
    """Deepgram accepts exactly `true`/`false` (the v7 SDK lowercases Python bools)."""
    raw = query.get(name)
    if raw is None:
        return default
    if raw == "true":
        return True
    if raw == "false":
        return False
    raise QueryError(f"Invalid value for {name}: {raw!r} (expected 'true' or 'false')")


def parse_int(query: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise QueryError(f"Invalid value for {name}: {raw!r} (expected an integer)") from exc
    if value < 0:
        raise QueryError(f"Invalid value for {name}: {raw!r} (must be >= 0)")
    return value


def run_cli(
    prog: str,
    options_cls: type[BaseModel],
    app_factory: Callable[[Any], Starlette],
    argv: list[str] | None = None,
) -> None:
    """`python -m sim.<x> --port N [--host H] [--<option> V ...]` -> uvicorn."""
    parser = argparse.ArgumentParser(prog=prog, description=options_cls.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    for name, info in options_cls.model_fields.items():
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            help=f"{info.description} (default: {info.default!r})",
        )
    args = parser.parse_args(argv)
    overrides = {
        name: getattr(args, name)
        for name in options_cls.model_fields
        if getattr(args, name) is not None
    }
    options = options_cls.model_validate(overrides)
    uvicorn.run(
        app_factory(options),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ws="websockets-sansio",
        lifespan="off",
    )
