"""ElevenLabs TTS simulator sockets: `stream-input` (one context) and `multi-stream-input`.

Wire contract: /work/shared/protocols/elevenlabs-tts-ws.md. Choices where it is silent:
* Generation triggers: `flush`, the chunk_length_schedule (default [120,160,250,290]),
  `try_trigger_generation` with >= 50 buffered chars, sentence ends under `auto_mode`.
* `close_context` drops unflushed text but lets already flushed text finish (the asyncapi
  text: "If it has already been set to flush it will continue flushing"), then sends that
  context's final message. Contexts generate concurrently, so their audio interleaves.
* A closing context still counts towards the 5-context limit until its final is sent; a 6th
  context gets an error message and its text is ignored (socket stays open).
* Multi: a context idle for `inactivity_timeout` is closed (final sent); the socket closes
  1008 once no context is open and nothing arrived for `inactivity_timeout`.
* Credentials: header `xi-api-key`, query `authorization`, or `xi_api_key` / `xi-api-key` /
  `authorization` in the first message. Wrong or missing: error message, close 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from sim.elevenlabs_tts_common import (
    AudioFormat,
    ContextRecord,
    ElevenLabsTtsSimOptions,
    WsSession,
    generate_audio,
)

DEFAULT_SCHEDULE = (120, 160, 250, 290)
TRY_TRIGGER_MIN_CHARS = 50
DEFAULT_CONTEXT_ID = "default"
SENTENCE_ENDS = (".", "!", "?")


class SocketGone(Exception):
    """The client went away; stop quietly."""


class _Context:
    """One context: a text buffer, generation triggers and a worker sending its audio."""

    def __init__(self, runner: StreamRunner, record: ContextRecord, schedule: list[int]) -> None:
        self.runner = runner
        self.record = record
        self.schedule = schedule
        self.schedule_pos = 0
        self.buffer = ""
        self.last_seen = runner.loop.time()
        self.jobs: asyncio.Queue[tuple[str, bool] | None] = asyncio.Queue()
        self.worker = asyncio.create_task(self._work())

    def add_text(self, text: str, *, flush: bool, try_trigger: bool) -> None:
        self.last_seen = self.runner.loop.time()
        self.buffer += text
        threshold = self.schedule[min(self.schedule_pos, len(self.schedule) - 1)]
        if flush:
            self._generate(flushed=True)
        elif self.runner.auto_mode and self.buffer.rstrip().endswith(SENTENCE_ENDS):
            self._generate(flushed=False)
        elif try_trigger and len(self.buffer.strip()) >= TRY_TRIGGER_MIN_CHARS:
            self._generate(flushed=False)
        elif len(self.buffer) >= threshold:
            self.schedule_pos += 1
            self._generate(flushed=False)

    def _generate(self, *, flushed: bool) -> None:
        text, self.buffer = self.buffer, ""
        if text.strip():
            self.record.generated_texts.append(text.strip())
        if text.strip() or flushed:
            self.jobs.put_nowait((text, flushed))

    def close(self, how: str, *, generate_rest: bool) -> None:
        """No more input; generate the rest (EOS) or drop it (close_context), then final."""
        if self.record.closed_by is not None:
            return
        self.record.closed_by = how
        if generate_rest:
            self._generate(flushed=False)
        self.buffer = ""
        self.jobs.put_nowait(None)

    async def _work(self) -> None:
        try:
            while (job := await self.jobs.get()) is not None:
                text, flushed = job
                async for piece in generate_audio(text, self.runner.fmt, self.runner.options):
                    self.record.audio_bytes += len(piece.audio)
                    await self.runner.send(self.runner.audio_message(self, piece.b64(), piece))
                if flushed and self.runner.multi and self.runner.options.snake_case:
                    cid = self.record.context_id
                    await self.runner.send({"type": "flush_done", "context_id": cid})
            await self.runner.send(self.runner.final_message(self))
            self.record.final_sent = True
        except SocketGone:
            return
        finally:
            self.runner.context_done(self)


class StreamRunner:
    """Serves one accepted socket of either endpoint."""

    def __init__(
        self,
        ws: WebSocket,
        session: WsSession,
        options: ElevenLabsTtsSimOptions,
        fmt: AudioFormat,
        *,
        multi: bool,
        inactivity_s: float,
        auto_mode: bool,
        authenticated: bool,
    ) -> None:
        self.ws, self.session, self.options, self.fmt = ws, session, options, fmt
        self.multi, self.inactivity_s, self.auto_mode = multi, inactivity_s, auto_mode
        self.authenticated = authenticated
        self.loop = asyncio.get_running_loop()
        self.lock = asyncio.Lock()
        self.open_contexts: dict[str, _Context] = {}
        self.live: set[_Context] = set()  # open or closing, final not yet sent
        self.last_message = self.loop.time()
        self.closed = False
        self.idle = asyncio.Event()

    # ---- sending ----------------------------------------------------------------------
    async def send(self, payload: dict[str, Any]) -> None:
        async with self.lock:
            if self.closed:
                raise SocketGone
            try:
                await self.ws.send_text(json.dumps(payload))
            except (WebSocketDisconnect, RuntimeError, OSError) as exc:
                self.closed = True
                raise SocketGone from exc

    def audio_message(self, ctx: _Context, b64: str, piece: Any) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "audio": b64,
            "isFinal": None,
            "normalizedAlignment": piece.alignment,
            "alignment": piece.alignment,
        }
        if self.multi:
            msg[self._key("contextId")] = ctx.record.context_id
        return msg

    def final_message(self, ctx: _Context) -> dict[str, Any]:
        if not self.multi:
            return {"audio": None, "isFinal": True, "normalizedAlignment": None, "alignment": None}
        return {self._key("isFinal"): True, self._key("contextId"): ctx.record.context_id}

    def _key(self, camel: str) -> str:
        if not self.options.snake_case:
            return camel
        return {"contextId": "context_id", "isFinal": "is_final"}[camel]

    async def close(self, code: int, reason: str = "") -> None:
        async with self.lock:
            if self.closed:
                return
            self.closed = True
            self.session.close_code = code
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await self.ws.close(code, reason)

    async def fail(self, error: str, message: str, code: int = 1008) -> None:
        """Error message then close (what the real service does for fatal errors)."""
        self.session.errors.append(error)
        with contextlib.suppress(SocketGone):
            await self.send({"message": message, "error": error, "code": code})
        await self.close(code, message[:120])

    # ---- contexts ---------------------------------------------------------------------
    def context_done(self, ctx: _Context) -> None:
        self.live.discard(ctx)
        if self.open_contexts.get(ctx.record.context_id) is ctx:
            del self.open_contexts[ctx.record.context_id]
        if not self.live:
            self.idle.set()

    def _new_context(self, cid: str, msg: dict[str, Any]) -> _Context | None:
        schedule = list(DEFAULT_SCHEDULE)
        config = msg.get("generation_config")
        if isinstance(config, dict) and config.get("chunk_length_schedule") is not None:
            raw = config["chunk_length_schedule"]
            if (
                not isinstance(raw, list)
                or not raw
                or not all(isinstance(v, int | float) and 50 <= v <= 500 for v in raw)
            ):
                return None
            schedule = [int(v) for v in raw]
        record = ContextRecord(context_id=cid)
        self.session.contexts.append(record)
        ctx = _Context(self, record, schedule)
        self.open_contexts[cid] = ctx
        self.live.add(ctx)
        self.idle.clear()
        return ctx

    # ---- receiving --------------------------------------------------------------------
    async def run(self) -> None:
        watchdog = asyncio.create_task(self._watchdog())
        try:
            await self._receive_loop()
        except WebSocketDisconnect:
            self.closed = True
        finally:
            watchdog.cancel()
            for ctx in list(self.live):
                if ctx.record.closed_by is None:
                    ctx.record.closed_by = "disconnect"
                ctx.worker.cancel()
            await asyncio.gather(watchdog, *(c.worker for c in self.live), return_exceptions=True)

    async def _receive_loop(self) -> None:
        while not self.closed:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                self.closed = True
                return
            self.last_message = self.loop.time()
            payload = _json_object(msg.get("text"))
            if payload is None:
                await self.fail("invalid_message", "Messages must be JSON objects sent as text.")
                return
            if not self.authenticated and not self._authenticate(payload):
                await self.fail("invalid_api_key", "Invalid API key")
                return
            handler = self._handle_multi if self.multi else self._handle_single
            if await handler(payload):
                return

    def _authenticate(self, payload: dict[str, Any]) -> bool:
        key = payload.get("xi_api_key") or payload.get("xi-api-key")
        bearer = str(payload.get("authorization") or "").removeprefix("Bearer ").strip()
        self.authenticated = self.options.api_key in (key, bearer)
        return self.authenticated

    async def _handle_single(self, payload: dict[str, Any]) -> bool:
        text = payload.get("text")
        if not isinstance(text, str):
            await self.fail("invalid_message", "Every message needs a 'text' string.")
            return True
        ctx = self.open_contexts.get(DEFAULT_CONTEXT_ID)
        if ctx is None:
            if self.session.contexts:  # the one context already ended
                return False
            ctx = self._new_context(DEFAULT_CONTEXT_ID, payload)
            if ctx is None:
                await self.fail("invalid_generation_config", "chunk_length_schedule: 50..500")
                return True
        if text == "":
            ctx.close("eos", generate_rest=True)
            await ctx.worker
            await self.close(1000)
            return True
        flush, trigger = bool(payload.get("flush")), bool(payload.get("try_trigger_generation"))
        ctx.add_text(text, flush=flush, try_trigger=trigger)
        return False

    async def _handle_multi(self, payload: dict[str, Any]) -> bool:
        if payload.get("close_socket") is True:
            for open_ctx in list(self.open_contexts.values()):
                open_ctx.close("close_socket", generate_rest=False)
            await asyncio.gather(*(c.worker for c in list(self.live)), return_exceptions=True)
            await self.close(1000)
            return True
        cid = str(payload.get("context_id") or DEFAULT_CONTEXT_ID)
        ctx = self.open_contexts.get(cid)
        if payload.get("close_context") is True:
            if ctx is not None:
                ctx.close("close_context", generate_rest=False)
                del self.open_contexts[cid]
            return False
        text, flush = payload.get("text"), payload.get("flush") is True
        if text is not None and not isinstance(text, str):
            await self.fail("invalid_message", "'text' must be a string.")
            return True
        if ctx is None:
            if not text and not flush:
                return False  # keep-alive for a context that does not exist: nothing to do
            if len(self.live) >= self.options.max_contexts:
                self.session.errors.append("max_contexts_exceeded")
                msg = f"At most {self.options.max_contexts} concurrent contexts per connection."
                error = {"message": msg, "error": "max_contexts_exceeded", "context_id": cid}
                await self.send(error)
                return False
            ctx = self._new_context(cid, payload)
            if ctx is None:
                await self.fail("invalid_generation_config", "chunk_length_schedule: 50..500")
                return True
        trigger = payload.get("try_trigger_generation") is True
        ctx.add_text(text or "", flush=flush, try_trigger=trigger)
        return False

    async def _watchdog(self) -> None:
        with contextlib.suppress(SocketGone):
            while not self.closed:
                now = self.loop.time()
                deadlines = [self.last_message + self.inactivity_s]
                for ctx in list(self.open_contexts.values()):
                    if self.multi and now - ctx.last_seen >= self.inactivity_s:
                        ctx.close("timeout", generate_rest=False)
                        del self.open_contexts[ctx.record.context_id]
                    else:
                        deadlines.append(ctx.last_seen + self.inactivity_s)
                socket_idle = now - self.last_message >= self.inactivity_s
                if socket_idle and (not self.multi or not self.live):
                    await self.fail("input_timeout_exceeded", _timeout_text(self.inactivity_s))
                    return
                await asyncio.sleep(max(0.01, min(deadlines) - now))


def _timeout_text(seconds: float) -> str:
    return (
        f"Have not received a new text input within the timeout of {seconds:.1f} seconds. "
        "Streaming input terminated. Please make sure to either feed the input in the timely "
        'manner, or to send the end of input text (empty string "") when done.'
    )


def _json_object(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None
