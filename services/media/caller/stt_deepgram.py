"""Deepgram live STT as a stream of typed events (caller audio in, transcripts out)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from deepgram.listen.v1.socket_client import AsyncV1SocketClient
from deepgram.listen.v1.types.listen_v1results import ListenV1Results
from deepgram.listen.v1.types.listen_v1speech_started import ListenV1SpeechStarted
from deepgram.listen.v1.types.listen_v1utterance_end import ListenV1UtteranceEnd
from websockets.asyncio.client import ClientConnection

from services.media.deepgram_socket import open_deepgram_socket, send_binary_now
from services.media.provider_clients import ProviderClients
from shared.runtime.settings import Settings


@dataclass(frozen=True)
class SttSpeechStarted:
    """Voice onset at `audio_ms` of the stream."""

    audio_ms: int


@dataclass(frozen=True)
class SttTranscript:
    """A transcript of [start_ms, end_ms) of the stream."""

    text: str
    start_ms: int
    end_ms: int
    is_final: bool
    speech_final: bool


@dataclass(frozen=True)
class SttUtteranceEnd:
    """A gap after the last word (word-timing based end of utterance)."""

    last_word_end_ms: int


SttEvent = SttSpeechStarted | SttTranscript | SttUtteranceEnd


def translate(message: Any) -> SttEvent | None:
    """One SDK message as our event (None for messages we do not use)."""
    if isinstance(message, ListenV1Results):
        alts = message.channel.alternatives
        text = alts[0].transcript if alts else ""
        start = float(message.start)
        return SttTranscript(
            text=text,
            start_ms=round(start * 1000),
            end_ms=round((start + float(message.duration)) * 1000),
            is_final=bool(message.is_final),
            speech_final=bool(message.speech_final),
        )
    if isinstance(message, ListenV1SpeechStarted):
        return SttSpeechStarted(audio_ms=round(float(message.timestamp) * 1000))
    if isinstance(message, ListenV1UtteranceEnd):
        return SttUtteranceEnd(last_word_end_ms=round(float(message.last_word_end) * 1000))
    return None


def shift(event: SttEvent, offset_ms: int) -> SttEvent:
    """An event with its socket-relative times moved to call audio time."""
    if offset_ms == 0:
        return event
    if isinstance(event, SttTranscript):
        return SttTranscript(
            event.text,
            event.start_ms + offset_ms,
            event.end_ms + offset_ms,
            event.is_final,
            event.speech_final,
        )
    if isinstance(event, SttSpeechStarted):
        return SttSpeechStarted(event.audio_ms + offset_ms)
    return SttUtteranceEnd(event.last_word_end_ms + offset_ms)


class DeepgramStt:
    """One live transcription socket for one call."""

    def __init__(
        self,
        settings: Settings,
        call_sid: str,
        *,
        keyterms: list[str] | None = None,
        audio_offset_ms: int = 0,
        clients: ProviderClients | None = None,
    ) -> None:
        self._settings = settings
        self._clients = clients or ProviderClients(settings)
        self._call_sid = call_sid
        self._keyterms = keyterms or []
        self.audio_offset_ms = audio_offset_ms
        self._stack = AsyncExitStack()
        self._conn: Any = None
        self._ws: ClientConnection | None = None

    async def open(self) -> None:
        """Connect (µ-law 8 kHz, interim results, endpointing, VAD events)."""
        s = self._settings
        ws = await self._stack.enter_async_context(
            open_deepgram_socket(
                self._clients,
                base=s.deepgram_stt_url,
                path="/v1/listen",
                api_key=s.deepgram_api_key,
                open_timeout_s=s.stt_connect_timeout_s,
                params={
                    "model": s.stt_model,
                    "encoding": "mulaw",
                    "sample_rate": 8000,
                    "channels": 1,
                    "interim_results": "true",
                    "endpointing": (
                        s.end_of_turn_short_ms if s.end_of_turn_dynamic else s.stt_endpointing_ms
                    ),
                    "utterance_end_ms": s.stt_utterance_end_ms,
                    "vad_events": "true",
                    "smart_format": "true",
                    "tag": self._call_sid,
                    "keyterm": self._keyterms or None,
                    # Where this socket's audio starts in the call (after a reconnect): echoed
                    # by Deepgram in metadata, used to map result times back to call audio time.
                    "extra": f"audio_offset_ms:{self.audio_offset_ms}",
                },
            )
        )
        # The SDK types this as its legacy protocol; it only sends, receives and iterates,
        # which the asyncio ClientConnection does the same way.
        self._conn = AsyncV1SocketClient(websocket=ws)  # type: ignore[arg-type]
        self._ws = ws

    async def send(self, audio: bytes) -> None:
        """Forward caller audio unchanged (straight to the socket when it can take it)."""
        if self._ws is None or not send_binary_now(self._ws, audio):
            await self._conn.send_media(audio)

    async def keep_alive(self) -> None:
        """Keep the socket open while no audio flows."""
        await self._conn.send_keep_alive()

    async def finalize(self) -> None:
        """Flush buffered audio into final results now."""
        await self._conn.send_finalize()

    async def events(self) -> AsyncIterator[SttEvent]:
        """Transcription events until the socket closes, in call audio time."""
        async for message in self._conn:
            event = translate(message)
            if event is not None:
                yield shift(event, self.audio_offset_ms)

    async def finish(self) -> None:
        """Ask Deepgram for the finals of the audio sent so far; it then closes the socket."""
        await self._conn.send_close_stream()

    async def close(self) -> None:
        """Ask Deepgram to finish and close the socket."""
        if self._conn is not None:
            with contextlib.suppress(OSError, RuntimeError):
                await self._conn.send_close_stream()
        await self._stack.aclose()
