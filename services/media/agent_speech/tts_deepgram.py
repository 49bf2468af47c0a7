"""Deepgram Aura TTS over WebSocket: text in, µ-law 8 kHz audio and flush markers out."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from deepgram.speak.v1.socket_client import AsyncV1SocketClient
from deepgram.speak.v1.types.speak_v1text import SpeakV1Text

from services.media.agent_speech.tts_protocol import TtsCleared, TtsEvent, TtsFlushed
from services.media.deepgram_socket import open_deepgram_socket
from services.media.provider_clients import ProviderClients
from shared.runtime.settings import Settings

__all__ = ["DeepgramTts", "TtsCleared", "TtsEvent", "TtsFlushed"]


class DeepgramTts:
    """One streaming synthesis socket for one call (segments are flushed in order)."""

    def __init__(
        self, settings: Settings, voice: str, clients: ProviderClients | None = None
    ) -> None:
        self._settings = settings
        self._clients = clients or ProviderClients(settings)
        self._voice = voice or settings.tts_model
        self._stack = AsyncExitStack()
        self._conn: Any = None

    async def open(self) -> None:
        """Connect asking for raw µ-law 8 kHz (what Twilio plays, no transcoding)."""
        s = self._settings
        ws = await self._stack.enter_async_context(
            open_deepgram_socket(
                self._clients,
                base=s.deepgram_tts_url,
                path="/v1/speak",
                api_key=s.deepgram_api_key,
                open_timeout_s=s.tts_connect_timeout_s,
                params={"model": self._voice, "encoding": "mulaw", "sample_rate": 8000},
            )
        )
        # The SDK types this as its legacy protocol; it only sends, receives and iterates,
        # which the asyncio ClientConnection does the same way.
        self._conn = AsyncV1SocketClient(websocket=ws)  # type: ignore[arg-type]

    async def speak(self, text: str) -> None:
        """Synthesize one segment now."""
        await self._conn.send_text(SpeakV1Text(type="Speak", text=text))
        await self._conn.send_flush()

    async def clear(self) -> None:
        """Drop everything not yet sent (barge-in)."""
        await self._conn.send_clear()

    async def events(self) -> AsyncIterator[TtsEvent]:
        """Audio chunks and flush/clear confirmations, in order."""
        async for message in self._conn:
            if isinstance(message, bytes):
                yield message
                continue
            # Dispatch on the wire `type`: deepgram-sdk 7.17 parses {"type": "Cleared", ...}
            # into SpeakV1Flushed (both are {type, sequence_id}), so isinstance would lie.
            kind = getattr(message, "type", None)
            if kind == "Flushed":
                yield TtsFlushed()
            elif kind == "Cleared":
                yield TtsCleared()

    async def close(self) -> None:
        """Close the socket."""
        if self._conn is not None:
            with contextlib.suppress(OSError, RuntimeError):
                await self._conn.send_close()
        await self._stack.aclose()
