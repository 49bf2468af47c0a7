"""ElevenLabs TTS over the multi-context WebSocket: one context per segment, µ-law 8 kHz out.

Why raw `websockets` and not the SDK's socket: elevenlabs 2.78's only TTS socket helper,
`text_to_speech.convert_realtime`, is synchronous (websockets.sync), opens one single-context
`stream-input` socket per call of the generator, ends the stream with EOS and has no
clear/cancel, and forces `wss://`. The SDK has no helper for `multi-stream-input`, only its
message types; this adapter builds its messages with those types (`InitialiseContext`,
`SendTextMulti`, `CloseContext`) and its URL with the SDK's `build_ws_url`.

Segment mapping: `speak(text)` opens context `seg-N` (`{"text": " "}`), sends the text with
`flush: true` and at once `close_context`. Per the asyncapi schema a flushed context keeps
flushing after close_context, and the server ends every closed context with its final
message (`isFinal` / `is_final`), so: audio of seg-N, then final of seg-N -> `TtsFlushed`.
Contexts are generated concurrently (up to 5 per socket; more wait here), so audio of a later
context is held back until every earlier one is final: segments never interleave.

Barge-in: `clear()` forgets every open context (their audio and finals are dropped by id,
already-queued output is purged) and yields `TtsCleared` at once. A flushed context cannot be
cancelled on the server, so its late audio still arrives and is discarded; its slot is freed
by its final message.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from elevenlabs.types import CloseContext, InitialiseContext, SendTextMulti
from elevenlabs.url_utils import build_ws_url
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from services.media.agent_speech.tts_protocol import TtsCleared, TtsEvent, TtsFlushed
from services.media.provider_clients import ProviderClients
from shared.runtime.settings import Settings

MAX_CONTEXTS = 5  # per multi-stream-input socket (provider limit)
KEEPALIVE_S = 10.0  # below the 20 s default inactivity_timeout
MAX_MESSAGE_BYTES = 16 * 2**20
OUTPUT_FORMAT = "ulaw_8000"


class TtsProviderError(RuntimeError):
    """The TTS provider reported an error or closed the stream."""


def provider_ssl_context(settings: Settings) -> ssl.SSLContext:
    """System trust store plus `provider_ca_file` (a simulator's throwaway CA) when set."""
    ctx = ssl.create_default_context()
    if settings.provider_ca_file:
        ctx.load_verify_locations(cafile=settings.provider_ca_file)
    return ctx


@dataclass
class _Segment:
    context_id: str
    text: str
    held: list[bytes] = field(default_factory=list)  # audio waiting for earlier segments
    final: bool = False


@dataclass(frozen=True)
class _End:
    error: BaseException | None


class ElevenLabsTts:
    """One multi-context synthesis socket for one call."""

    def __init__(
        self, settings: Settings, voice: str, clients: ProviderClients | None = None
    ) -> None:
        self._settings = settings
        self._clients = clients
        self._voice = voice or settings.elevenlabs_voice_id
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._out: asyncio.Queue[TtsEvent | _End] = asyncio.Queue()
        self._waiting: deque[_Segment] = deque()  # spoken, context not opened yet
        self._sent: deque[_Segment] = deque()  # context open, in speak order
        self._by_id: dict[str, _Segment] = {}
        self._dropped: set[str] = set()  # cleared contexts whose final has not come yet
        self._send_lock = asyncio.Lock()
        self._counter = 0
        self._closing = False

    @property
    def url(self) -> str:
        return build_ws_url(
            self._settings.elevenlabs_tts_url,
            ["v1", "text-to-speech", self._voice, "multi-stream-input"],
            {"model_id": self._settings.elevenlabs_model, "output_format": OUTPUT_FORMAT},
        )

    def _ssl_context(self) -> ssl.SSLContext:
        if self._clients is not None:
            return self._clients.ssl_context()
        return provider_ssl_context(self._settings)

    async def open(self) -> None:
        """Connect (bounded by tts_connect_timeout_s); raises OSError/TimeoutError/...."""
        url = self.url
        self._ws = await connect(
            url,
            additional_headers={"xi-api-key": self._settings.elevenlabs_api_key},
            ssl=self._ssl_context() if url.startswith("wss://") else None,
            open_timeout=self._settings.tts_connect_timeout_s,
            max_size=MAX_MESSAGE_BYTES,
        )
        self._tasks = [
            asyncio.create_task(self._read(self._ws)),
            asyncio.create_task(self._keepalive(self._ws)),
        ]

    async def speak(self, text: str) -> None:
        """Queue one segment; its context opens as soon as a slot is free."""
        self._counter += 1
        self._waiting.append(_Segment(f"seg-{self._counter}", text.strip() + " "))
        await self._pump()

    async def clear(self) -> None:
        """Drop every segment spoken so far; TtsCleared comes out next."""
        for segment in self._sent:
            self._dropped.add(segment.context_id)
            del self._by_id[segment.context_id]
        self._sent.clear()
        self._waiting.clear()
        ended: _End | None = None
        while not self._out.empty():
            item = self._out.get_nowait()
            if isinstance(item, _End):
                ended = item
        self._out.put_nowait(TtsCleared())
        if ended is not None:
            self._out.put_nowait(ended)

    async def events(self) -> AsyncIterator[TtsEvent]:
        """Audio and markers in segment order; raises TtsProviderError if the socket dies."""
        while True:
            item = await self._out.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    async def close(self) -> None:
        """Close the socket; events() ends."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ws is not None:
            with contextlib.suppress(OSError, ConnectionClosed):
                await self._ws.close()
        self._out.put_nowait(_End(None))

    # ---- sending ----------------------------------------------------------------------
    async def _pump(self) -> None:
        """Open contexts for waiting segments while fewer than MAX_CONTEXTS are live."""
        async with self._send_lock:
            while self._waiting and len(self._sent) + len(self._dropped) < MAX_CONTEXTS:
                segment = self._waiting.popleft()
                self._sent.append(segment)
                self._by_id[segment.context_id] = segment
                cid = segment.context_id
                await self._send(InitialiseContext(text=" ", context_id=cid).dict())
                text = SendTextMulti(text=segment.text, context_id=cid, flush=True)
                await self._send(text.dict())
                await self._send(CloseContext(context_id=cid, close_context=True).dict())

    async def _send(self, message: dict[str, Any]) -> None:
        if self._ws is None:
            raise TtsProviderError("ElevenLabs socket is not open")
        try:
            await self._ws.send(json.dumps(message))
        except ConnectionClosed as exc:
            raise TtsProviderError(f"ElevenLabs socket closed: {exc}") from exc

    async def _keepalive(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(KEEPALIVE_S)
                async with self._send_lock:
                    await ws.send(json.dumps({"text": ""}))

    # ---- receiving --------------------------------------------------------------------
    async def _read(self, ws: ClientConnection) -> None:
        error: BaseException | None = None
        try:
            async for raw in ws:
                await self._handle(_parse(raw))
            if not self._closing:
                error = TtsProviderError(f"ElevenLabs closed the socket ({ws.close_code})")
        except ConnectionClosed as exc:
            if not self._closing:
                error = TtsProviderError(f"ElevenLabs socket lost: {exc}")
        except TtsProviderError as exc:
            error = exc
        self._out.put_nowait(_End(error))

    async def _handle(self, message: dict[str, Any]) -> None:
        if message.get("error"):
            raise TtsProviderError(f"ElevenLabs error {message['error']}: {message.get('message')}")
        cid = message.get("contextId") or message.get("context_id")
        final = message.get("isFinal") is True or message.get("is_final") is True
        if cid in self._dropped:
            if final:
                self._dropped.discard(cid)
                await self._pump()
            return
        segment = self._by_id.get(cid) if isinstance(cid, str) else None
        if segment is None:
            return  # flush_done, or a message without a context we know
        audio = message.get("audio")
        if isinstance(audio, str) and audio:
            chunk = _b64(audio)
            if segment is self._sent[0]:
                self._out.put_nowait(chunk)
            else:
                segment.held.append(chunk)
        if final:
            segment.final = True
            self._release_finished()
            await self._pump()

    def _release_finished(self) -> None:
        while self._sent and self._sent[0].final:
            done = self._sent.popleft()
            del self._by_id[done.context_id]
            self._out.put_nowait(TtsFlushed())
            if self._sent:
                head = self._sent[0]
                for chunk in head.held:
                    self._out.put_nowait(chunk)
                head.held.clear()


def _parse(raw: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TtsProviderError(f"ElevenLabs sent a non-JSON frame: {exc}") from exc
    if not isinstance(message, dict):
        raise TtsProviderError("ElevenLabs sent a JSON value that is not an object")
    return message


def _b64(audio: str) -> bytes:
    try:
        return base64.b64decode(audio, validate=True)
    except binascii.Error as exc:
        raise TtsProviderError(f"ElevenLabs sent bad base64 audio: {exc}") from exc
