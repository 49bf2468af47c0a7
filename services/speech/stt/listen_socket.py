"""`WS /v1/listen`: one Deepgram-live-compatible transcription socket.

The reader takes audio and control frames, cuts utterances (`Segmenter`) and queues what to
send; the writer sends the queue in order, waiting for each final decode in turn, so messages
leave in audio-time order (SpeechStarted, the final, UtteranceEnd) whatever the pool does.
Interims are best effort: decoded only while the pool has a worker free besides one kept for
finals, sent only when nothing is queued before them and their utterance is still open, so
they never delay a final.

Refused before the upgrade (plain HTTP, like Deepgram): bad key 401, bad query 400, replica full
429. After it: a text frame that is not a known control message closes 1008 `DATA-0001 ...`;
no audio nor message for `SPEECH_IDLE_TIMEOUT_S` closes 1011 `NET-0001`; a frame over
`SPEECH_WS_MAX_BYTES` closes 1009 (uvicorn's `ws_max_size` too); more than
`SPEECH_MAX_QUEUED_MESSAGES` results waiting to be sent (audio pushed far faster than real
time) closes 1008 `DATA-0002 ...`, so one socket cannot queue unbounded decodes. These close
at once, dropping what was still queued. `CloseStream` (or an empty binary frame) finalizes,
sends `Metadata` and closes 1000.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from services.speech.stt import protocol
from services.speech.stt.protocol import ListenOptions, ProtocolError, QueryError
from services.speech.stt.recognizer import MODEL_INFO, Recognizer, Transcript
from services.speech.stt.segmenter import Closed, InterimDue, Opened, Segmenter, SegmentOptions
from shared.observability.metrics import Metrics
from shared.runtime.settings import Settings
from shared.speech.vad import VadModel

log = logging.getLogger(__name__)

Message = dict[str, Any]
AUTH_SCHEMES = ("token", "bearer")


@dataclass
class ListenDeps:
    """What every /v1/listen socket of a replica shares."""

    settings: Settings
    recognizer: Recognizer
    vad_model: VadModel
    metrics: Metrics
    open_sockets: int = 0


def authorized(headers: Mapping[str, str], key: str) -> bool:
    """`Authorization: Token|Bearer <key>` or `Sec-WebSocket-Protocol: token, <key>`."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() in AUTH_SCHEMES and value.strip() == key:
        return True
    parts = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
    return len(parts) == 2 and parts[0].lower() in AUTH_SCHEMES and parts[1] == key


def _denial(status: int, code: str, message: str, request_id: str) -> Response:
    body = {"err_code": code, "err_msg": message, "request_id": request_id}
    headers = {"dg-error": message, "dg-request-id": request_id}
    return Response(json.dumps(body), status, headers, media_type="application/json")


def listen_key(settings: Settings) -> str:
    """The key the speech service accepts: SPEECH_API_KEY, else DEEPGRAM_API_KEY."""
    key = settings.speech_api_key
    return settings.deepgram_api_key if key is None else key


def invalid_credentials() -> Response:
    """Deepgram's 401 (before a WebSocket upgrade, or for a REST call)."""
    return _denial(401, "INVALID_AUTH", "Invalid credentials.", protocol.new_request_id())


async def serve_listen(websocket: WebSocket, deps: ListenDeps) -> None:
    """Check the upgrade, then run the socket to its end."""
    s = deps.settings
    rid = protocol.new_request_id()
    denial: Response | None = None
    options: ListenOptions | None = None
    if not authorized(websocket.headers, listen_key(s)):
        denial = _denial(401, "INVALID_AUTH", "Invalid credentials.", rid)
    elif deps.open_sockets >= s.speech_max_sessions:
        denial = _denial(429, "TOO_MANY_REQUESTS", "speech replica at capacity", rid)
    else:
        params = websocket.query_params
        lists = {name: params.getlist(name) for name in ("keyterm", "keywords", "tag")}
        try:
            options = protocol.listen_options(params, lists, rid)
        except QueryError as exc:
            denial = _denial(400, "Bad Request", str(exc), rid)
    if denial is not None or options is None:
        await websocket.send_denial_response(denial or _denial(400, "Bad Request", "", rid))
        return
    parts = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    subprotocol = parts[0] if len(parts) == 2 and parts[0].lower() in AUTH_SCHEMES else None
    await websocket.accept(subprotocol=subprotocol, headers=[(b"dg-request-id", rid.encode())])
    deps.open_sockets += 1
    deps.metrics.speech_sessions.set(deps.open_sockets)
    try:
        await ListenSession(websocket, options, deps).run()
    finally:
        deps.open_sockets -= 1
        deps.metrics.speech_sessions.set(deps.open_sockets)


class ListenSession:
    """One socket: reader (audio -> utterances -> queued messages) and ordered writer."""

    def __init__(self, websocket: WebSocket, options: ListenOptions, deps: ListenDeps) -> None:
        s = deps.settings
        self._ws = websocket
        self._options = options
        self._deps = deps
        self._segmenter = Segmenter(
            deps.vad_model,
            SegmentOptions(
                silence_ms=options.silence_ms,
                min_speech_ms=s.speech_min_speech_ms,
                interim_every_ms=s.speech_interim_every_ms if options.interim_results else 0,
                max_utterance_ms=s.speech_max_utterance_ms,
            ),
        )
        self._out: asyncio.Queue[Message | asyncio.Task[list[Message]] | None] = asyncio.Queue()
        self._digest = hashlib.sha256()
        self._interim: asyncio.Task[None] | None = None
        self._writing = False  # the writer is sending or waiting for a decode
        # (end of the last final's utterance, its decode): UtteranceEnd once the gap has passed
        self._utterance_end: tuple[int, asyncio.Task[list[Message]]] | None = None

    async def run(self) -> None:
        writer = asyncio.create_task(self._write(), name="listen-writer")
        code, reason = 1000, ""
        try:
            code, reason = await self._read()
        except ProtocolError as exc:
            code, reason = 1008, str(exc)
        except WebSocketDisconnect:
            code, reason = 1000, "client went away"
        finally:
            self._out.put_nowait(None)
            if self._interim is not None:
                self._interim.cancel()
        abandon = code != 1000 or reason == "client went away"
        if abandon:  # nobody to send to, or a broken client: drop what is queued
            writer.cancel()
            self._drop_queued()
        try:
            try:
                await writer
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not abandon or (current is not None and current.cancelling()):
                    raise  # this task itself was cancelled
            if reason == "client went away":
                return
            if code == 1000:
                audio_ms, digest = self._segmenter.audio_ms, self._digest.hexdigest()
                await self._send(
                    protocol.metadata_message(self._options, MODEL_INFO, audio_ms, digest)
                )
            await self._ws.close(code=code, reason=reason[:120])
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:  # client gone mid-send
            log.info("listen socket %s ended early: %r", self._options.request_id, exc)

    def _drop_queued(self) -> None:
        while not self._out.empty():
            item = self._out.get_nowait()
            if isinstance(item, asyncio.Task):
                item.cancel()

    async def _read(self) -> tuple[int, str]:
        """Frames until CloseStream/empty frame (1000, '') or an error (code, reason)."""
        idle = self._deps.settings.speech_idle_timeout_s
        while True:
            try:
                async with asyncio.timeout(idle):
                    message = await self._ws.receive()
            except TimeoutError:
                return 1011, "NET-0001: no audio received for the idle timeout"
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            data = message.get("bytes")
            if data is not None:
                if not data:  # the legacy end-of-stream signal
                    self._finalize(from_finalize=False)
                    return 1000, ""
                limit = self._deps.settings.speech_ws_max_bytes
                if len(data) > limit:  # whatever the ASGI server's own limit is
                    return 1009, f"audio frame over {limit} bytes"
                self._audio(data)
                if self._out.qsize() > self._deps.settings.speech_max_queued_messages:
                    return 1008, "DATA-0002: audio arrives faster than it can be transcribed"
                continue
            kind = protocol.control(message.get("text") or "")
            if kind == "Finalize":
                self._finalize(from_finalize=True)
            elif kind == "CloseStream":
                self._finalize(from_finalize=False)
                return 1000, ""

    def _audio(self, data: bytes) -> None:
        self._digest.update(data)
        self._deps.metrics.speech_audio.inc(len(data) / 8000)
        for event in self._segmenter.feed(data):
            if isinstance(event, Opened):
                self._speech_started(event)
            elif isinstance(event, InterimDue):
                self._interim_due(event)
            else:
                self._closed(event, from_finalize=False)
        self._check_utterance_end()

    def _speech_started(self, event: Opened) -> None:
        if self._utterance_end is not None:
            gap = self._options.utterance_end_ms or 0
            if event.start_ms < self._utterance_end[0] + gap:
                self._utterance_end = None  # the caller went on: no UtteranceEnd yet
        if self._options.vad_events:
            self._out.put_nowait(protocol.speech_started_message(event.start_ms))

    def _interim_due(self, event: InterimDue) -> None:
        workers = self._deps.settings.speech_decode_workers
        busy = self._deps.recognizer.pending >= max(1, workers - 1)  # a worker kept for finals
        if busy or (self._interim is not None and not self._interim.done()):
            self._deps.metrics.speech_interims_skipped.inc()
            return
        self._interim = asyncio.create_task(self._send_interim(event))

    async def _send_interim(self, event: InterimDue) -> None:
        """Decode the open utterance so far; send it only if nothing is queued before it and
        its utterance is still open (an interim never holds up a final, nor overtakes one)."""
        messages = await self._decode(event, is_final=False)
        current = self._interim is asyncio.current_task()
        if current and not self._writing and self._out.empty():
            for message in messages:
                await self._send(message)
        elif messages:
            self._deps.metrics.speech_interims_skipped.inc()

    def _closed(self, event: Closed, *, from_finalize: bool) -> None:
        self._interim = None  # an interim still decoding is now out of date: it is dropped
        task = asyncio.create_task(
            self._decode(event, is_final=True, from_finalize=from_finalize)
        )
        self._out.put_nowait(task)
        if self._options.utterance_end_ms is not None and self._options.interim_results:
            self._utterance_end = (event.end_ms, task)

    def _finalize(self, *, from_finalize: bool) -> None:
        closed = self._segmenter.flush()
        if closed is not None:
            self._closed(closed, from_finalize=from_finalize)

    def _check_utterance_end(self) -> None:
        pending = self._utterance_end
        gap = self._options.utterance_end_ms
        if pending is None or gap is None or self._segmenter.speaking:
            return
        end_ms, final = pending
        if self._segmenter.audio_ms >= end_ms + gap:
            self._utterance_end = None
            self._out.put_nowait(asyncio.create_task(self._utterance_end_after(end_ms, final)))

    async def _utterance_end_after(
        self, end_ms: int, final: Awaitable[list[Message]]
    ) -> list[Message]:
        finals = await final
        heard = any(m["channel"]["alternatives"][0]["transcript"] for m in finals)
        return [protocol.utterance_end_message(end_ms)] if heard else []

    async def _decode(
        self, event: InterimDue | Closed, *, is_final: bool, from_finalize: bool = False
    ) -> list[Message]:
        kind = "final" if is_final else "interim"
        try:
            heard = await self._deps.recognizer.transcribe(event.pcm, self._options.keyterms, kind)
        except (RuntimeError, ValueError, MemoryError):  # CTranslate2 failures: keep the call
            log.exception("listen socket %s: %s decode failed", self._options.request_id, kind)
            heard = Transcript("", 0.0)  # the final still closes the utterance, unheard
        if not is_final and not heard.text:
            return []
        endpoint = isinstance(event, Closed) and event.endpoint
        return [
            protocol.results_message(
                self._options,
                MODEL_INFO,
                text=heard.text,
                confidence=heard.confidence,
                start_ms=event.start_ms,
                end_ms=event.end_ms,
                is_final=is_final,
                speech_final=is_final and endpoint and self._options.endpointing_ms is not None,
                from_finalize=from_finalize,
            )
        ]

    async def _write(self) -> None:
        while (item := await self._out.get()) is not None:
            self._writing = True
            if isinstance(item, dict):
                await self._send(item)
            else:
                for message in await item:
                    await self._send(message)
            self._writing = False

    async def _send(self, message: Message) -> None:
        await self._ws.send_text(json.dumps(message))
