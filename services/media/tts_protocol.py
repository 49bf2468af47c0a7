"""The TTS adapter contract the media service speaks to, and the factory that picks one.

Contract of every TtsStream:
* `speak(text)` is one segment. Its audio (raw µ-law 8 kHz chunks) comes out of `events()`
  in order, followed by exactly one `TtsFlushed`. Segments never interleave.
* `clear()` (barge-in) drops every segment spoken before it: none of their audio or
  `TtsFlushed` is yielded after `clear()` returns, and one `TtsCleared` marks the cut.
  Segments spoken after `clear()` work normally.
* `events()` is called once; it ends or raises when the stream is dead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

from services.media.provider_clients import ProviderClients
from shared.settings import Settings

TtsProvider = Literal["deepgram", "elevenlabs"]
TTS_PROVIDERS: tuple[TtsProvider, ...] = ("deepgram", "elevenlabs")


@dataclass(frozen=True)
class TtsFlushed:
    """All audio for the text before the matching Flush has been sent."""


@dataclass(frozen=True)
class TtsCleared:
    """Buffered text and unsent audio were dropped."""


TtsEvent = bytes | TtsFlushed | TtsCleared


class TtsStream(Protocol):
    """One call's text-to-speech stream."""

    async def open(self) -> None:
        """Connect (raises when the provider cannot be reached)."""

    async def speak(self, text: str) -> None:
        """Queue one segment."""

    async def clear(self) -> None:
        """Barge-in: drop queued text and audio."""

    def events(self) -> AsyncIterator[TtsEvent]:
        """Audio chunks and flush/clear markers, in order."""

    async def close(self) -> None:
        """Release the connection."""


class UnknownTtsProvider(ValueError):
    """The phone number names a TTS provider FrontDesk does not have."""


def split_voice(voice: str) -> tuple[str, str]:
    """A number's voice setting as (provider, voice id): 'elevenlabs:<voice id>' or
    'deepgram:<model>'; a bare name is a Deepgram Aura model ('' = provider default)."""
    provider, sep, rest = voice.partition(":")
    if sep and provider in TTS_PROVIDERS:
        return provider, rest
    return "deepgram", voice


def make_tts(
    settings: Settings, provider: str, voice: str, clients: ProviderClients | None = None
) -> TtsStream:
    """The provider's WebSocket adapter, falling back to its REST endpoint when the socket
    cannot connect or dies mid-call. `voice` is the number's voice ('' = provider default)."""
    from services.media.tts_deepgram import DeepgramTts
    from services.media.tts_elevenlabs import ElevenLabsTts
    from services.media.tts_rest_fallback import (
        DeepgramRestSynth,
        ElevenLabsRestSynth,
        FallbackTts,
        RestSynth,
        RestTts,
    )

    primary: TtsStream
    synth: RestSynth
    shared = clients or ProviderClients(settings)
    if provider == "deepgram":
        primary = DeepgramTts(settings, voice, shared)
        synth = DeepgramRestSynth(settings, voice, shared)
    elif provider == "elevenlabs":
        primary = ElevenLabsTts(settings, voice, shared)
        synth = ElevenLabsRestSynth(settings, voice, shared)
    else:
        raise UnknownTtsProvider(
            f"unknown TTS provider {provider!r} (expected one of {', '.join(TTS_PROVIDERS)})"
        )
    return FallbackTts(primary, RestTts(synth), provider=provider)
