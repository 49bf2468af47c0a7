"""ElevenLabs text-to-speech simulator: WS `stream-input`, WS `multi-stream-input`, REST.

Wire contract: /work/shared/protocols/elevenlabs-tts-ws.md. Audio is deterministic tone audio
whose length follows the rule in sim/elevenlabs_tts_common.py. Endpoints:

* `WS  /v1/text-to-speech/{voice_id}/stream-input`        (sim/elevenlabs_tts_ws.py)
* `WS  /v1/text-to-speech/{voice_id}/multi-stream-input`  (sim/elevenlabs_tts_ws.py)
* `POST /v1/text-to-speech/{voice_id}/stream` and `POST /v1/text-to-speech/{voice_id}`
* `GET /sim/tts/sessions` (what every socket and REST request did), `POST /sim/tts/drop`
  (close every open socket with 1011: a provider dying mid-call), `GET /healthz`.

`python -m sim.elevenlabs_tts_server --port N [--tls-dir DIR] [--<option> V ...]`; with
`--tls-dir` it serves https/wss with a trustme certificate (made in DIR or reused from it;
clients trust DIR/ca.pem, see sim/tls.py).
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from sim.elevenlabs_tts_common import (
    NO_WEBSOCKET_MODELS,
    ElevenLabsTtsSimOptions,
    FormatError,
    WsSession,
    generate_audio,
    parse_flag,
    parse_output_format,
)
from sim.elevenlabs_tts_ws import StreamRunner

__all__ = ["ElevenLabsTtsSimOptions", "create_app", "main"]

MAX_INACTIVITY_S = 180
DEFAULT_INACTIVITY_S = 20


@dataclass
class RestRequest:
    """One REST synthesis request."""

    voice_id: str
    text: str
    model_id: str | None
    output_format: str
    audio_bytes: int = 0

    def summary(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ElevenLabsSimState:
    """Everything the app keeps between requests (app.state.sim)."""

    options: ElevenLabsTtsSimOptions
    sessions: list[WsSession] = field(default_factory=list)
    rest_requests: list[RestRequest] = field(default_factory=list)
    runners: set[StreamRunner] = field(default_factory=set)


def _state(app: Any) -> ElevenLabsSimState:
    state: ElevenLabsSimState = app.state.sim
    return state


def _detail(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": {"status": code, "message": message}}, status_code=status)


def _bearer(value: str | None) -> str:
    return (value or "").removeprefix("Bearer ").strip()


def _inactivity(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_INACTIVITY_S
    try:
        value = float(raw)
    except ValueError as exc:
        raise FormatError(f"Invalid inactivity_timeout {raw!r}") from exc
    if not 0 < value <= MAX_INACTIVITY_S:
        raise FormatError(f"inactivity_timeout must be in (0, {MAX_INACTIVITY_S}]")
    return value


async def tts_ws(websocket: WebSocket) -> None:
    state = _state(websocket.app)
    query = websocket.query_params
    multi = websocket.url.path.endswith("/multi-stream-input")
    try:
        fmt = parse_output_format(query.get("output_format"))
        model = query.get("model_id")
        if model in NO_WEBSOCKET_MODELS:
            raise FormatError(f"WebSockets are not available for model {model!r}")
        inactivity_s = _inactivity(query.get("inactivity_timeout"))
        auto_mode = parse_flag(query, "auto_mode", False)
        for flag in ("sync_alignment", "enable_logging", "enable_ssml_parsing"):
            parse_flag(query, flag, False)
    except FormatError as exc:
        await websocket.send_denial_response(_detail(400, "invalid_request", str(exc)))
        return
    key = state.options.api_key
    header_key = websocket.headers.get("xi-api-key")
    authenticated = key in (header_key, _bearer(query.get("authorization")))
    await websocket.accept()
    session = WsSession(
        endpoint="multi-stream-input" if multi else "stream-input",
        voice_id=websocket.path_params["voice_id"],
        model_id=model,
        output_format=fmt.name,
    )
    state.sessions.append(session)
    runner = StreamRunner(
        websocket,
        session,
        state.options,
        fmt,
        multi=multi,
        inactivity_s=inactivity_s,
        auto_mode=auto_mode,
        authenticated=authenticated,
    )
    if header_key is not None and not authenticated:
        await runner.fail("invalid_api_key", "Invalid API key")
        return
    state.runners.add(runner)
    try:
        await runner.run()
    finally:
        state.runners.discard(runner)


def _validation_error(loc: list[str], msg: str, kind: str) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": loc, "msg": msg, "type": kind}]}, status_code=422)


async def tts_rest(request: Request) -> Response:
    state = _state(request.app)
    options = state.options
    if request.headers.get("xi-api-key") != options.api_key:
        return _detail(401, "invalid_api_key", "Invalid API key")
    try:
        fmt = parse_output_format(request.query_params.get("output_format"))
    except FormatError as exc:
        return _detail(400, "output_format_not_allowed", str(exc))
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _validation_error(["body"], "JSON decode error", "value_error.jsondecode")
    if not isinstance(body, dict) or "text" not in body:
        return _validation_error(["body", "text"], "field required", "value_error.missing")
    text, model = body["text"], body.get("model_id")
    if not isinstance(text, str) or not text.strip():
        return _validation_error(["body", "text"], "text must be a non-empty string", "value_error")
    record = RestRequest(
        voice_id=request.path_params["voice_id"],
        text=text,
        model_id=model if isinstance(model, str) else None,
        output_format=fmt.name,
    )
    state.rest_requests.append(record)

    async def body_chunks() -> AsyncIterator[bytes]:
        async for piece in generate_audio(text, fmt, options):
            record.audio_bytes += len(piece.audio)
            yield piece.audio

    headers = {"request-id": uuid.uuid4().hex, "x-character-count": str(len(text))}
    return StreamingResponse(body_chunks(), media_type=fmt.content_type, headers=headers)


async def get_sessions(request: Request) -> JSONResponse:
    state = _state(request.app)
    return JSONResponse(
        {
            "sockets": [s.summary() for s in state.sessions],
            "rest": [r.summary() for r in state.rest_requests],
        }
    )


async def drop_sockets(request: Request) -> JSONResponse:
    runners = list(_state(request.app).runners)
    for runner in runners:
        await runner.close(1011, "simulated provider failure")
    return JSONResponse({"dropped": len(runners)})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "service": "elevenlabs-tts-sim"})


def create_app(options: ElevenLabsTtsSimOptions | None = None) -> Starlette:
    base = "/v1/text-to-speech/{voice_id}"
    app = Starlette(
        routes=[
            WebSocketRoute(base + "/stream-input", tts_ws),
            WebSocketRoute(base + "/multi-stream-input", tts_ws),
            Route(base + "/stream", tts_rest, methods=["POST"]),
            Route(base, tts_rest, methods=["POST"]),
            Route("/sim/tts/sessions", get_sessions, methods=["GET"]),
            Route("/sim/tts/drop", drop_sockets, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    app.state.sim = ElevenLabsSimState(options=options or ElevenLabsTtsSimOptions())
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sim.elevenlabs_tts_server", description=ElevenLabsTtsSimOptions.__doc__
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--tls-dir", type=Path, help="Serve TLS with a trustme cert kept here.")
    for name, info in ElevenLabsTtsSimOptions.model_fields.items():
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            help=f"{info.description} (default: {info.default!r})",
        )
    args = parser.parse_args(argv)
    fields = ElevenLabsTtsSimOptions.model_fields
    overrides = {n: getattr(args, n) for n in fields if getattr(args, n) is not None}
    options = ElevenLabsTtsSimOptions.model_validate(overrides)
    tls: dict[str, str] = {}
    if args.tls_dir is not None:
        from sim.tls import make_tls_files

        files = make_tls_files(args.tls_dir)
        tls = {"ssl_certfile": str(files.cert_chain_pem), "ssl_keyfile": str(files.key_pem)}
    uvicorn.run(
        create_app(options),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ws="websockets-sansio",
        lifespan="off",
        **tls,  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    main()
