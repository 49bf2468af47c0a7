"""`/v1/speak`: the Deepgram Aura WebSocket protocol served by Piper.

One socket = one `_Speaker`. The receive loop handles control messages inline; a job task
renders the flushed text phrase by phrase in the shared thread pool (one phrase ahead of
playout) and a paced sender sends 20 ms frames no more than `speech_tts_lead_ms` ahead of
real time. Clear takes the send lock, bumps the generation and cancels the job: at most the
frame being written when Clear was read goes out, and `Cleared` follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from services.speech.stt.listen_socket import authorized, listen_key
from services.speech.tts import aura_protocol as aura
from services.speech.tts.piper_engine import INSTALL_COMMAND, PiperEngine, SpeechModelMissing
from services.speech.tts.rendering import load_engine, render_pool, rendered_audio
from services.speech.tts.telephony_audio import frames
from shared.runtime.settings import Settings

log = logging.getLogger(__name__)

MODEL_VERSION = "piper-1.8.0"
FRAME_S = 0.02

class _Speaker:
    """One accepted /v1/speak socket."""

    def __init__(
        self, ws: WebSocket, fmt: aura.AudioFormat, engine: PiperEngine, settings: Settings
    ) -> None:
        self.ws = ws
        self.fmt = fmt
        self.engine = engine
        self.pool = render_pool(settings)
        self.lead_s = settings.speech_tts_lead_ms / 1000.0
        self.loop = asyncio.get_running_loop()
        self.send_lock = asyncio.Lock()
        self.buffer: list[str] = []
        self.pending: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self.generation = 0
        self.next_seq = 0
        self.worker = asyncio.create_task(self._work())

    def _take_seq(self) -> int:
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        return seq

    async def _send_frame(self, frame: bytes, generation: int) -> bool:
        async with self.send_lock:
            if generation != self.generation:
                return False
            await self.ws.send_bytes(frame)
            return True

    async def _work(self) -> None:
        while True:
            text, seq = await self.pending.get()
            generation = self.generation
            try:
                done = await self._speak(text, generation)
            except Exception as exc:  # a sentence the voice cannot say must not kill the socket
                log.exception("speech synthesis failed for %d characters", len(text))
                await self._send_text(
                    aura.warning(f"synthesis failed: {type(exc).__name__}", "SYNTHESIS_FAILED"),
                    generation,
                )
                done = True
            if done:
                await self._send_text(aura.flushed(seq), generation)

    async def _send_text(self, text: str, generation: int) -> None:
        async with self.send_lock:
            if generation == self.generation:
                await self.ws.send_text(text)

    async def _render(self, text: str, out: asyncio.Queue[bytes | Exception | None]) -> None:
        """Phrases -> encoded audio, ahead of the sender; None ends, an exception fails."""
        try:
            async for chunk in rendered_audio(self.engine, self.pool, text, self.fmt):
                await out.put(chunk)
        except Exception as exc:  # handed to the sender, which raises it in the job
            await out.put(exc)
            return
        await out.put(None)

    async def _speak(self, text: str, generation: int) -> bool:
        """Send the audio of one flush, paced; False when a Clear cut it."""
        if not text.strip():
            return True
        rendered: asyncio.Queue[bytes | Exception | None] = asyncio.Queue(maxsize=1)
        renderer = asyncio.create_task(self._render(text, rendered))
        try:
            start = self.loop.time()
            sent = 0
            while (chunk := await rendered.get()) is not None:
                if isinstance(chunk, Exception):
                    raise chunk
                if sent == 0:  # pacing starts at the first audio, not at the Flush
                    start = self.loop.time()
                for frame in frames(chunk, self.fmt.frame_bytes):
                    delay = start + sent * FRAME_S - self.lead_s - self.loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if not await self._send_frame(frame, generation):
                        return False
                    sent += 1
            return True
        finally:
            renderer.cancel()
            await asyncio.gather(renderer, return_exceptions=True)

    async def clear(self) -> None:
        async with self.send_lock:
            self.generation += 1
            self.buffer.clear()
            self.worker.cancel()
            await asyncio.gather(self.worker, return_exceptions=True)
            self.pending = asyncio.Queue()
            await self.ws.send_text(aura.cleared(self._take_seq()))
        self.worker = asyncio.create_task(self._work())

    def flush(self) -> None:
        text = "".join(self.buffer)
        self.buffer.clear()
        self.pending.put_nowait((text, self._take_seq()))

    async def close(self, code: int, reason: str) -> None:
        await self.stop()
        async with self.send_lock:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self.ws.close(code, reason)

    async def stop(self) -> None:
        self.worker.cancel()
        await asyncio.gather(self.worker, return_exceptions=True)

    async def run(self) -> None:
        """Receive until the client closes, sends Close, or breaks the protocol."""
        while True:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            try:
                if msg.get("bytes") is not None:
                    raise aura.parse_binary()
                command = aura.parse_text(msg.get("text") or "")
            except aura.ProtocolError as exc:
                await self.close(exc.code, exc.reason)
                return
            if isinstance(command, aura.Speak):
                self.buffer.append(command.text)
            elif isinstance(command, aura.Flush):
                self.flush()
            elif isinstance(command, aura.Clear):
                await self.clear()
            else:
                await self.close(1000, "")
                return


async def serve_speak(websocket: WebSocket, settings: Settings) -> None:
    """Serve one Aura-compatible `/v1/speak` socket with the local Piper voice."""
    request_id = str(uuid.uuid4())
    try:
        if not authorized(websocket.headers, listen_key(settings)):
            raise aura.ProtocolError(401, "Invalid credentials.")
        fmt = aura.parse_query(websocket.query_params, default_model="piper")
    except aura.ProtocolError as exc:
        body = {"err_code": aura.error_code(exc.code), "err_msg": exc.reason,
                "request_id": request_id}
        headers = {"dg-error": exc.reason, "dg-request-id": request_id}
        await websocket.send_denial_response(JSONResponse(body, exc.code, headers=headers))
        return
    parts = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    subprotocol = parts[0] if len(parts) == 2 else None  # the browser form of the key
    await websocket.accept(
        subprotocol=subprotocol, headers=[(b"dg-request-id", request_id.encode())]
    )
    try:
        engine = await load_engine(settings)
    except SpeechModelMissing as exc:
        log.error("%s", exc)
        await websocket.close(1011, f"speech model missing: run `{INSTALL_COMMAND}`")
        return
    speaker = _Speaker(websocket, fmt, engine, settings)
    try:
        await websocket.send_text(aura.metadata(request_id, engine.name, MODEL_VERSION))
        await speaker.run()
    except WebSocketDisconnect:
        pass  # the client went away mid-send; nothing left to tell it
    finally:
        await speaker.stop()
