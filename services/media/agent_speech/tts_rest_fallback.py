"""TTS over REST when the provider's WebSocket cannot connect or dies mid-call.

* `DeepgramRestSynth`: `POST /v1/speak?model&encoding=mulaw&sample_rate=8000&container=none`
  via deepgram-sdk's `speak.v1.audio.generate` (streams the chunked body).
* `ElevenLabsRestSynth`: `POST /v1/text-to-speech/{voice}/stream?output_format=ulaw_8000`
  via elevenlabs' `AsyncElevenLabs.text_to_speech.stream`.
* `RestTts`: the TtsStream contract over a synth: one request per segment, in order.
* `FallbackTts`: the WebSocket adapter while it works; when it fails to open, or its events
  end / raise mid-call, every segment not yet flushed is re-synthesized over REST. The
  segment that was cut resumes at the byte offset already played (same text -> same audio
  length), so nothing is heard twice; later segments follow whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import httpx
from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError as DeepgramApiError
from elevenlabs.client import AsyncElevenLabs
from elevenlabs.core.api_error import ApiError as ElevenLabsApiError
from websockets.exceptions import WebSocketException

from services.media.agent_speech.tts_elevenlabs import OUTPUT_FORMAT, TtsProviderError
from services.media.agent_speech.tts_protocol import TtsCleared, TtsEvent, TtsFlushed, TtsStream
from services.media.provider_clients import ProviderClients, http_base
from shared.runtime.settings import Settings

log = logging.getLogger(__name__)

PROVIDER_ERRORS = (
    OSError,
    TimeoutError,
    WebSocketException,
    TtsProviderError,
    DeepgramApiError,
    ElevenLabsApiError,
    httpx.HTTPError,
)


class RestSynth(Protocol):
    """Text in, streamed µ-law 8 kHz bytes out, one HTTP request per call."""

    def synthesize(self, text: str) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class DeepgramRestSynth:
    """Deepgram Aura `POST /v1/speak` (raw µ-law, no WAV header)."""

    def __init__(
        self, settings: Settings, voice: str, clients: ProviderClients | None = None
    ) -> None:
        self._settings = settings
        self._clients = clients or ProviderClients(settings)
        self._owned = clients is None
        self._model = voice or settings.tts_model

    @property
    def _client(self) -> AsyncDeepgramClient:
        s = self._settings
        rest = s.deepgram_tts_rest_url or http_base(s.deepgram_tts_url)
        return self._clients.deepgram(s.deepgram_api_key, s.deepgram_tts_url, rest)

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        chunks = self._client.speak.v1.audio.generate(
            text=text, model=self._model, encoding="mulaw", sample_rate=8000, container="none"
        )
        async for chunk in chunks:
            yield chunk

    async def aclose(self) -> None:
        if self._owned:  # shared clients belong to the replica
            await self._clients.aclose()


class ElevenLabsRestSynth:
    """ElevenLabs `POST /v1/text-to-speech/{voice}/stream` (ulaw_8000)."""

    def __init__(
        self, settings: Settings, voice: str, clients: ProviderClients | None = None
    ) -> None:
        self._settings = settings
        self._clients = clients or ProviderClients(settings)
        self._owned = clients is None
        self._sdk: AsyncElevenLabs | None = None
        self._voice = voice or settings.elevenlabs_voice_id
        self._model = settings.elevenlabs_model

    @property
    def _client(self) -> AsyncElevenLabs:
        if self._sdk is None:  # built on first use: most calls never fall back to REST
            s = self._settings
            self._sdk = AsyncElevenLabs(
                api_key=s.elevenlabs_api_key,
                base_url=s.elevenlabs_rest_url or http_base(s.elevenlabs_tts_url),
                httpx_client=self._clients.http(),
            )
        return self._sdk

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        chunks = self._client.text_to_speech.stream(
            self._voice, text=text.strip(), model_id=self._model, output_format=OUTPUT_FORMAT
        )
        async for chunk in chunks:
            yield chunk

    async def aclose(self) -> None:
        if self._owned:
            await self._clients.aclose()


@dataclass(frozen=True)
class _End:
    error: BaseException | None


class RestTts:
    """TtsStream over a RestSynth: segments synthesized one after another."""

    def __init__(self, synth: RestSynth) -> None:
        self._synth = synth
        self._jobs: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self._out: asyncio.Queue[TtsEvent | _End] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Nothing to connect; start synthesizing queued segments."""
        if self._worker is None:
            self._worker = asyncio.create_task(self._work())

    async def speak(self, text: str) -> None:
        self.enqueue(text)

    def enqueue(self, text: str, skip_bytes: int = 0) -> None:
        """Queue a segment, dropping its first `skip_bytes` (already heard) of audio."""
        self._jobs.put_nowait((text, skip_bytes))

    async def clear(self) -> None:
        """Stop the request in flight, drop queued segments and output; then TtsCleared."""
        await self._stop_worker()
        self._jobs = asyncio.Queue()
        ended: _End | None = None
        while not self._out.empty():
            item = self._out.get_nowait()
            if isinstance(item, _End):
                ended = item
        self._out.put_nowait(TtsCleared())
        if ended is not None:
            self._out.put_nowait(ended)
        else:
            self._worker = asyncio.create_task(self._work())

    async def events(self) -> AsyncIterator[TtsEvent]:
        while True:
            item = await self._out.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    async def close(self) -> None:
        await self._stop_worker()
        await self._synth.aclose()
        self._out.put_nowait(_End(None))

    async def _stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None

    async def _work(self) -> None:
        try:
            while True:
                text, skip = await self._jobs.get()
                async for chunk in self._synth.synthesize(text):
                    if skip >= len(chunk):
                        skip -= len(chunk)
                        continue
                    self._out.put_nowait(chunk[skip:])
                    skip = 0
                self._out.put_nowait(TtsFlushed())
        except PROVIDER_ERRORS as exc:
            self._out.put_nowait(_End(TtsProviderError(f"TTS REST request failed: {exc}")))


@dataclass
class _Pending:
    text: str
    delivered: int = 0  # audio bytes already yielded


class FallbackTts:
    """The WebSocket adapter, replaced by REST synthesis when it cannot connect or dies."""

    def __init__(self, primary: TtsStream, rest: RestTts, *, provider: str) -> None:
        self._primary = primary
        self._rest = rest
        self.provider = provider
        self.fallback_reason: str | None = None  # set once REST took over
        self._pending: deque[_Pending] = deque()  # spoken on the socket, not yet flushed
        self._muted = 0  # clears sent to the socket whose TtsCleared has not come yet
        self._closing = False

    @property
    def using_rest(self) -> bool:
        return self.fallback_reason is not None

    async def open(self) -> None:
        try:
            await self._primary.open()
        except PROVIDER_ERRORS as exc:
            await self._to_rest(f"{self.provider} TTS socket failed to open: {exc!r}")

    async def speak(self, text: str) -> None:
        if self.using_rest:
            self._rest.enqueue(text)
            return
        self._pending.append(_Pending(text))
        try:
            await self._primary.speak(text)
        except PROVIDER_ERRORS as exc:  # events() sees the dead socket and re-speaks via REST
            log.warning("%s TTS socket send failed: %r", self.provider, exc)

    async def clear(self) -> None:
        self._pending.clear()
        if self.using_rest:
            await self._rest.clear()
            return
        self._muted += 1
        try:
            await self._primary.clear()
        except PROVIDER_ERRORS as exc:
            log.warning("%s TTS clear failed: %r", self.provider, exc)

    async def events(self) -> AsyncIterator[TtsEvent]:
        if not self.using_rest:
            reason = f"{self.provider} TTS socket ended"
            try:
                async for item in self._primary.events():
                    if self._passes(item):
                        yield item
            except PROVIDER_ERRORS as exc:
                reason = f"{self.provider} TTS socket failed: {exc!r}"
            if self._closing:
                return
            await self._to_rest(reason)
            for _ in range(self._muted):
                yield TtsCleared()
            self._muted = 0
        async for item in self._rest.events():
            yield item

    async def close(self) -> None:
        self._closing = True
        with contextlib.suppress(*PROVIDER_ERRORS):
            await self._primary.close()
        await self._rest.close()

    def _passes(self, item: TtsEvent) -> bool:
        """Account for one socket event; False for stale ones (before a pending Cleared)."""
        if self._muted:
            if isinstance(item, TtsCleared):
                self._muted -= 1
                return True
            return False
        if isinstance(item, bytes) and self._pending:
            self._pending[0].delivered += len(item)
        elif isinstance(item, TtsFlushed) and self._pending:
            self._pending.popleft()
        return True

    async def _to_rest(self, reason: str) -> None:
        """Switch to REST; unflushed segments are re-queued there before any await."""
        log.warning("%s; falling back to REST synthesis", reason)
        self.fallback_reason = reason
        for index, pending in enumerate(self._pending):
            self._rest.enqueue(pending.text, pending.delivered if index == 0 else 0)
        self._pending.clear()
        await self._rest.open()
        if not self._closing:
            with contextlib.suppress(*PROVIDER_ERRORS):
                await self._primary.close()
