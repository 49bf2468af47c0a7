"""Deepgram live speech-to-text simulator: `WS /v1/listen` on a real server.

Wire contract: /work/shared/protocols/deepgram-live-stt.md. Transcripts are scripted
per call via `POST /sim/listen/script` (see `SttScriptEngine` for the timing rules), and
withdrawn with the same body at `POST /sim/listen/unscript`;
`POST /sim/listen/new-stream` forgets a call's scripts when the call resumes on a new media
stream (whose audio clock restarts at 0); `POST /sim/listen/drop` fails a call's socket and
`extra=audio_offset_ms:X` resumes the script on a new one (see `sim/stt_reconnect.py`).

Simulator choices where the real service is unspecified:
* Non-JSON text frames and unknown control `type`s close the socket with 1008 and a
  reason starting with `DATA-0001` (the real service's behaviour is undocumented).
* Only raw PCM-like encodings (linear16, linear32, mulaw, alaw) can be clocked; other
  documented encodings are rejected with HTTP 400, as is a missing encoding/sample_rate.
* Transcripts are returned verbatim, whatever punctuate/smart_format say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from sim import stt_reconnect as reconnect
from sim.deepgram_common import (
    QueryError,
    auth_error,
    deny,
    model_uuid_for,
    new_request_id,
    parse_bool,
    parse_int,
    run_cli,
    subprotocol_for,
)
from sim.deepgram_stt_session import (
    DeepgramSttSimOptions,
    ScriptUtterance,
    SessionRunner,
    SttSession,
)
from sim.stt_script import ModelInfo, SttEngineOptions, SttScriptEngine

__all__ = ["DeepgramSttSimOptions", "ScriptUtterance", "SttSession", "create_app", "main"]

DOCUMENTED_ENCODINGS = frozenset(
    {
        "linear16",
        "linear32",
        "flac",
        "alaw",
        "mulaw",
        "amr-nb",
        "amr-wb",
        "opus",
        "ogg-opus",
        "speex",
        "g729",
    }
)
BYTES_PER_SAMPLE = {"linear16": 2, "linear32": 4, "mulaw": 1, "alaw": 1}
BOOL_PARAMS = (
    "multichannel",
    "punctuate",
    "smart_format",
    "numerals",
    "profanity_filter",
    "dictation",
    "diarize",
    "detect_entities",
    "mip_opt_out",
)
DEFAULT_ENDPOINTING_MS = 10


@dataclass
class SttSimState:
    """Everything the app keeps between requests (stored on app.state.sim)."""

    options: DeepgramSttSimOptions
    scripts: dict[str, list[ScriptUtterance]] = field(default_factory=dict)
    sessions: list[SttSession] = field(default_factory=list)

    def register(self, utt: ScriptUtterance) -> int:
        """Store the utterance and push it to open sessions with that tag. The same utterance
        again (a caller's retry of a request whose answer it lost) changes nothing: heard
        twice, it became two caller turns under load."""
        scripts = self.scripts.setdefault(utt.tag, [])
        live = [
            s
            for s in self.sessions
            if not s.closed and utt.tag in s.tags and not s.engine.closed
        ]
        if utt in scripts:
            return len(live)
        scripts.append(utt)
        for session in live:
            session.add_script(utt)
        return len(live)

    def unregister(self, utt: ScriptUtterance) -> int:
        """Withdraw a registered utterance (from the tag's scripts and its open sockets)."""
        scripts = self.scripts.get(utt.tag, [])
        if utt in scripts:
            scripts.remove(utt)
        live = [
            s
            for s in self.sessions
            if not s.closed and utt.tag in s.tags and not s.engine.closed
        ]
        for session in live:
            session.remove_script(utt)
        return len(live)

    def new_stream(self, tag: str) -> int:
        """The call of `tag` starts a new media stream: forget its earlier streams' scripts.

        Scripts are in a stream's caller audio time; a new stream's clock starts at 0 again,
        so an earlier stream's lines must not be heard again on the new stream's sockets."""
        return len(self.scripts.pop(tag, []))


def _state(app: Any) -> SttSimState:
    state: SttSimState = app.state.sim
    return state


def model_info_for(model: str) -> ModelInfo:
    parts = model.split("-")
    arch = "-".join(parts[:2]) if parts[0] == "nova" and len(parts) > 1 else parts[0]
    return ModelInfo(name=model, version="2025-01-01.0", arch=arch, uuid=model_uuid_for(model))


def engine_options_from_query(
    query: QueryParams, request_id: str, interim_every_ms: int
) -> SttEngineOptions:
    """Validate the /v1/listen query (raises QueryError -> HTTP 400)."""
    encoding = query.get("encoding")
    sample_rate = parse_int(query, "sample_rate", None)
    if encoding is not None and encoding not in DOCUMENTED_ENCODINGS:
        raise QueryError(f"Invalid encoding: {encoding!r}")
    if encoding is None or sample_rate is None:
        raise QueryError("encoding and sample_rate are required together for raw audio")
    if encoding not in BYTES_PER_SAMPLE:
        raise QueryError(f"simulator cannot clock compressed encoding {encoding!r}")
    if sample_rate == 0:
        raise QueryError("sample_rate must be positive")
    for name in BOOL_PARAMS:
        parse_bool(query, name, False)
    raw_ep = query.get("endpointing")
    endpointing: int | None
    if raw_ep == "false":
        endpointing = None
    elif raw_ep in (None, "true"):
        endpointing = DEFAULT_ENDPOINTING_MS
    else:
        endpointing = parse_int(query, "endpointing", None)
    channels = parse_int(query, "channels", 1) or 1
    return SttEngineOptions(
        sample_rate=sample_rate,
        bytes_per_sample=BYTES_PER_SAMPLE[encoding],
        channels=channels,
        interim_results=parse_bool(query, "interim_results", False),
        endpointing_ms=endpointing,
        utterance_end_ms=parse_int(query, "utterance_end_ms", None),
        vad_events=parse_bool(query, "vad_events", False),
        interim_every_ms=interim_every_ms,
        request_id=request_id,
        model=model_info_for(query.get("model") or "nova-3"),
    )


async def listen_ws(websocket: WebSocket) -> None:
    state = _state(websocket.app)
    rid = new_request_id()
    denied = auth_error(state.options.api_key, websocket.headers, rid)
    if denied is not None:
        await websocket.send_denial_response(denied)
        return
    try:
        eopts = engine_options_from_query(
            websocket.query_params, rid, state.options.interim_every_ms
        )
        extras = reconnect.parse_extras(websocket.query_params.getlist("extra"))
        offset_ms = reconnect.audio_offset_ms(extras)
    except QueryError as exc:
        await deny(websocket, 400, "Bad Request", str(exc), rid)
        return
    await websocket.accept(
        subprotocol=subprotocol_for(websocket.headers),
        headers=[(b"dg-request-id", rid.encode())],
    )
    tags = websocket.query_params.getlist("tag")
    session = SttSession(tags, rid, SttScriptEngine(eopts), audio_offset_ms=offset_ms)
    for tag in tags:
        for utt in state.scripts.get(tag, []):
            session.add_script(utt)
    state.sessions.append(session)
    await SessionRunner(websocket, session, state.options).run()


async def post_script(request: Request) -> JSONResponse:
    try:
        utt = ScriptUtterance.model_validate(await request.json())
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    if utt.end_ms <= utt.start_ms or not utt.text.split():
        return JSONResponse({"error": "need start_ms < end_ms and non-blank text"}, 422)
    attached = _state(request.app).register(utt)
    return JSONResponse({"ok": True, "tag": utt.tag, "attached_sessions": attached})


async def post_unscript(request: Request) -> JSONResponse:
    try:
        utt = ScriptUtterance.model_validate(await request.json())
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    detached = _state(request.app).unregister(utt)
    return JSONResponse({"ok": True, "tag": utt.tag, "detached_sessions": detached})


async def post_new_stream(request: Request) -> JSONResponse:
    try:
        req = reconnect.NewStreamRequest.model_validate(await request.json())
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    forgotten = _state(request.app).new_stream(req.tag)
    return JSONResponse({"ok": True, "tag": req.tag, "forgotten_scripts": forgotten})


async def post_drop(request: Request) -> JSONResponse:
    try:
        req = reconnect.DropRequest.model_validate(await request.json())
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    sessions = _state(request.app).sessions
    drops = [s.drop for s in sessions if s.drop and req.tag in s.tags and not s.closed]
    if not drops:
        return JSONResponse({"error": f"no open socket with tag {req.tag!r}"}, status_code=404)
    try:
        for drop in drops:
            drop(req.mode)
    except RuntimeError as exc:  # transport unreachable (another ASGI server)
        return JSONResponse({"error": str(exc)}, status_code=500)
    return JSONResponse({"ok": True, "tag": req.tag, "dropped_sessions": len(drops)})


async def get_sessions(request: Request) -> JSONResponse:
    return JSONResponse([s.summary() for s in _state(request.app).sessions])


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "service": "deepgram-stt-sim"})


def create_app(options: DeepgramSttSimOptions | None = None) -> Starlette:
    app = Starlette(
        routes=[
            WebSocketRoute("/v1/listen", listen_ws),
            Route("/sim/listen/script", post_script, methods=["POST"]),
            Route("/sim/listen/unscript", post_unscript, methods=["POST"]),
            Route("/sim/listen/sessions", get_sessions, methods=["GET"]),
            Route("/sim/listen/drop", post_drop, methods=["POST"]),
            Route("/sim/listen/new-stream", post_new_stream, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    app.state.sim = SttSimState(options=options or DeepgramSttSimOptions())
    return app


def main(argv: list[str] | None = None) -> None:
    run_cli("python -m sim.deepgram_stt_server", DeepgramSttSimOptions, create_app, argv)


if __name__ == "__main__":
    main()
