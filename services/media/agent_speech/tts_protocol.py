"""The TTS adapter contract the media service speaks to (the factory is `tts_factory`).

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

TtsProvider = Literal["deepgram", "elevenlabs", "local"]
TTS_PROVIDERS: tuple[TtsProvider, ...] = ("deepgram", "elevenlabs", "local")
"""'local' is the self-hosted speech service (services/speech) through the Aura protocol."""


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
    """A number's voice setting as (provider, voice id): 'elevenlabs:<voice id>',
    'deepgram:<model>' or 'local:<name>' (the self-hosted speech service); a bare name is a
    Deepgram Aura model ('' = provider default)."""
    provider, sep, rest = voice.partition(":")
    if sep and provider in TTS_PROVIDERS:
        return provider, rest
    return "deepgram", voice
