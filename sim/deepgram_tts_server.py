"""Deepgram Aura text-to-speech simulator: `WS /v1/speak` and `POST /v1/speak`.

Wire contract: /work/shared/protocols/deepgram-aura-tts.md. Audio is a deterministic
tone sequence whose length follows `audio_bytes_for_text` exactly.

Simulator choices where the real service is unspecified:
* `sequence_id` is one per-socket counter shared by Flush and Clear, starting at 0.
* A Clear cancels queued flushes too: they never get a `Flushed`.
* A rate-limited Flush (more than 20 in 60 s) sends a Warning and keeps the text buffered.
* Non-JSON text / unknown `type` closes with 1008; a binary frame closes with 1003.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from sim.deepgram_common import (
    QueryError,
    auth_error,
    deny,
    error_response,
    model_uuid_for,
    new_request_id,
    parse_int,
    run_cli,
    subprotocol_for,
)
from sim.deepgram_tts_audio import BYTES_PER_SAMPLE, audio_bytes_for_text, synthesize, wav_header

__all__ = ["DeepgramTtsSimOptions", "TtsSession", "audio_bytes_for_text", "create_app", "main"]

DEFAULT_MODEL = "aura-asteria-en"
MODEL_VERSION = "2025-04-07.0"
VALID_RATES = {
    "linear16": (8000, 16000, 24000, 32000, 48000),
    "mulaw": (8000, 16000),
    "alaw": (8000, 16000),
}
DEFAULT_RATE = {"linear16": 24000, "mulaw": 8000, "alaw": 8000}
RAW_CONTENT_TYPE = {"linear16": "audio/l16", "mulaw": "audio/basic", "alaw": "audio/x-alaw-basic"}


class DeepgramTtsSimOptions(BaseModel):
    """Deepgram Aura TTS simulator settings."""

    api_key: str = Field("dg-sim", description="API key accepted in `Authorization: Token <key>`.")
    ms_per_char: float = Field(
        60.0, ge=0, description="Audio length (ms) that one text character produces."
    )
    first_byte_latency_ms: int = Field(
        40, ge=0, description="Wall delay between a Flush and its first audio byte."
    )
    chunk_bytes: int = Field(1600, gt=0, description="Size of each binary audio frame sent.")
    realtime_factor: float = Field(
        10.0, ge=0, description="Audio is made this many times faster than real time; 0=instant."
    )
    flush_limit: int = Field(20, gt=0, description="Max Flush messages per flush_window_s.")
    flush_window_s: float = Field(60.0, gt=0, description="Window of the Flush rate limit.")


@dataclass
class TtsSession:
    """One accepted /v1/speak socket (exposed via GET /sim/speak/sessions)."""

    request_id: str
    model: str
    encoding: str
    sample_rate: int
    flushed_texts: list[str] = field(default_factory=list)
    audio_bytes_sent: int = 0
    flushes: int = 0
    clears: int = 0
    warnings: int = 0
    closed: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "model": self.model,
            "encoding": self.encoding,
            "sample_rate": self.sample_rate,
            "flushed_texts": self.flushed_texts,
            "audio_bytes_sent": self.audio_bytes_sent,
            "flushes": self.flushes,
            "clears": self.clears,
            "warnings": self.warnings,
            "closed": self.closed,
        }


@dataclass
class TtsSimState:
    """Everything the app keeps between requests (stored on app.state.sim)."""

    options: DeepgramTtsSimOptions
    sessions: list[TtsSession] = field(default_factory=list)


def _state(app: Any) -> TtsSimState:
    state: TtsSimState = app.state.sim
    return state


def parse_audio_query(query: QueryParams, default_encoding: str) -> tuple[str, str, int]:
    """(model, encoding, sample_rate) or QueryError."""
    model = query.get("model") or DEFAULT_MODEL
    encoding = query.get("encoding") or default_encoding
    if encoding not in VALID_RATES:
        raise QueryError(f"Unsupported encoding {encoding!r} (simulator: linear16|mulaw|alaw)")
    rate = parse_int(query, "sample_rate", DEFAULT_RATE[encoding]) or 0
    if rate not in VALID_RATES[encoding]:
        raise QueryError(f"Invalid sample_rate {rate} for encoding {encoding}")
    return model, encoding, rate


class _SpeakRunner:
    """Handles one /v1/speak socket: control messages inline, synthesis in a task."""

    def __init__(self, ws: WebSocket, session: TtsSession, options: DeepgramTtsSimOptions):
        self.ws = ws
        self.session = session
        self.options = options
        self.lock = asyncio.Lock()
        self.jobs: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self.buffer: list[str] = []
        self.next_seq = 0
        self.flush_times: deque[float] = deque()
        self.loop = asyncio.get_running_loop()
        self.worker = asyncio.create_task(self._work())

    async def _send(self, data: bytes | dict[str, Any]) -> None:
        async with self.lock:
            if isinstance(data, bytes):
                await self.ws.send_bytes(data)
                self.session.audio_bytes_sent += len(data)
            else:
                await self.ws.send_text(json.dumps(data))

    async def _work(self) -> None:
        try:
            while True:
                text, seq = await self.jobs.get()
                await self._synthesize(text)
                await self._send({"type": "Flushed", "sequence_id": seq})
        except (WebSocketDisconnect, RuntimeError):
            return  # socket gone; the receive loop will notice too

    async def _synthesize(self, text: str) -> None:
        o, s = self.options, self.session
        if not text:
            return
        await asyncio.sleep(o.first_byte_latency_ms / 1000.0)
        audio = synthesize(text, o.ms_per_char, s.sample_rate, s.encoding)
        chunk_s = o.chunk_bytes / (s.sample_rate * BYTES_PER_SAMPLE[s.encoding])
        t0 = self.loop.time()
        for k, off in enumerate(range(0, len(audio), o.chunk_bytes)):
            if o.realtime_factor > 0:
                delay = t0 + k * chunk_s / o.realtime_factor - self.loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self._send(audio[off : off + o.chunk_bytes])

    def _take_seq(self) -> int:
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        return seq

    async def _stop_worker(self) -> None:
        async with self.lock:  # no frame is half-sent when we cancel
            self.worker.cancel()
        await asyncio.wait([self.worker])

    async def _flush(self) -> None:
        now = self.loop.time()
        while self.flush_times and now - self.flush_times[0] >= self.options.flush_window_s:
            self.flush_times.popleft()
        if len(self.flush_times) >= self.options.flush_limit:
            self.session.warnings += 1
            await self._send(
                {
                    "type": "Warning",
                    "description": f"Flush limit exceeded: max {self.options.flush_limit} "
                    f"Flush messages per {self.options.flush_window_s:g} s; Flush ignored.",
                    "code": "FLUSH_LIMIT_EXCEEDED",
                }
            )
            return
        self.flush_times.append(now)
        text = "".join(self.buffer)
        self.buffer.clear()
        self.session.flushes += 1
        if text:
            self.session.flushed_texts.append(text)
        self.jobs.put_nowait((text, self._take_seq()))

    async def _clear(self) -> None:
        await self._stop_worker()
        self.buffer.clear()
        self.jobs = asyncio.Queue()
        self.session.clears += 1
        await self._send({"type": "Cleared", "sequence_id": self._take_seq()})
        self.worker = asyncio.create_task(self._work())

    async def _close(self, code: int, reason: str) -> None:
        await self._stop_worker()
        async with self.lock:
            await self.ws.close(code, reason)

    async def run(self) -> None:
        try:
            await self._send(
                {
                    "type": "Metadata",
                    "request_id": self.session.request_id,
                    "model_name": self.session.model,
                    "model_version": MODEL_VERSION,
                    "model_uuid": model_uuid_for(self.session.model),
                    "additional_model_uuids": [],
                }
            )
            await self._receive_loop()
        except WebSocketDisconnect:
            pass  # client vanished mid-send; cleanup below
        finally:
            self.worker.cancel()
            await asyncio.wait([self.worker])
            self.session.closed = True

    async def _receive_loop(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("bytes") is not None:
                await self._close(1003, "binary frames are not accepted on /v1/speak")
                return
            payload = _json_object(msg.get("text") or "")
            kind = payload.get("type") if payload is not None else None
            text = payload.get("text") if payload is not None else None
            if kind == "Speak" and isinstance(text, str):
                self.buffer.append(text)
            elif kind == "Flush":
                await self._flush()
            elif kind == "Clear":
                await self._clear()
            elif kind == "Close":
                await self._close(1000, "")
                return
            else:
                await self._close(1008, f"DATA-0001: unsupported text message {kind!r}")
                return


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None


async def speak_ws(websocket: WebSocket) -> None:
    state = _state(websocket.app)
    rid = new_request_id()
    denied = auth_error(state.options.api_key, websocket.headers, rid)
    if denied is not None:
        await websocket.send_denial_response(denied)
        return
    try:
        model, encoding, rate = parse_audio_query(websocket.query_params, "linear16")
    except QueryError as exc:
        await deny(websocket, 400, "Bad Request", str(exc), rid)
        return
    await websocket.accept(
        subprotocol=subprotocol_for(websocket.headers),
        headers=[(b"dg-request-id", rid.encode())],
    )
    session = TtsSession(request_id=rid, model=model, encoding=encoding, sample_rate=rate)
    state.sessions.append(session)
    await _SpeakRunner(websocket, session, state.options).run()


async def speak_rest(request: Request) -> Response:
    o = _state(request.app).options
    rid = new_request_id()
    denied = auth_error(o.api_key, request.headers, rid)
    if denied is not None:
        return denied
    try:
        model, encoding, rate = parse_audio_query(request.query_params, "mp3")
        container = request.query_params.get("container") or "wav"
        if container not in ("none", "wav"):
            raise QueryError(f"Unsupported container {container!r} for {encoding}")
        body = _json_object((await request.body()).decode("utf-8", "replace"))
        text = body.get("text") if body is not None else None
        if not isinstance(text, str) or not text:
            raise QueryError("Request body must be JSON with a non-empty 'text' string")
    except QueryError as exc:
        return error_response(400, "Bad Request", str(exc), rid)
    audio = synthesize(text, o.ms_per_char, rate, encoding)
    if container == "wav":
        audio = wav_header(len(audio), rate, encoding) + audio

    async def chunks() -> AsyncIterator[bytes]:
        await asyncio.sleep(o.first_byte_latency_ms / 1000.0)
        for off in range(0, len(audio), o.chunk_bytes):
            yield audio[off : off + o.chunk_bytes]

    headers = {
        "dg-request-id": rid,
        "dg-model-name": model,
        "dg-model-uuid": model_uuid_for(model),
        "dg-char-count": str(len(text)),
    }
    media_type = "audio/wav" if container == "wav" else RAW_CONTENT_TYPE[encoding]
    return StreamingResponse(chunks(), media_type=media_type, headers=headers)


async def get_sessions(request: Request) -> JSONResponse:
    return JSONResponse([s.summary() for s in _state(request.app).sessions])


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "service": "deepgram-tts-sim"})


async def set_options(request: Request) -> JSONResponse:
    """Change some options for the sockets opened from now on (a test's slow TTS, say)."""
    state = _state(request.app)
    body = _json_object((await request.body())[:4096].decode("utf-8", "replace"))
    if body is None:
        return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
    unknown = sorted(set(body) - set(DeepgramTtsSimOptions.model_fields))
    if unknown:
        return JSONResponse({"error": f"unknown options: {unknown}"}, status_code=400)
    try:
        state.options = DeepgramTtsSimOptions.model_validate(
            {**state.options.model_dump(), **body}
        )
    except ValidationError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(state.options.model_dump())


def create_app(options: DeepgramTtsSimOptions | None = None) -> Starlette:
    app = Starlette(
        routes=[
            WebSocketRoute("/v1/speak", speak_ws),
            Route("/v1/speak", speak_rest, methods=["POST"]),
            Route("/sim/speak/sessions", get_sessions, methods=["GET"]),
            Route("/sim/speak/options", set_options, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    app.state.sim = TtsSimState(options=options or DeepgramTtsSimOptions())
    return app


def main(argv: list[str] | None = None) -> None:
    run_cli("python -m sim.deepgram_tts_server", DeepgramTtsSimOptions, create_app, argv)


if __name__ == "__main__":
    main()
