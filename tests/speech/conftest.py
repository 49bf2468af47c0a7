"""The speech service on a real loopback socket, its models loaded once per test session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio

from services.speech.app import create_app
from shared.runtime.settings import Settings
from tests.servers import serve_app

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "speech"
SPEECH_KEY = "speech-test-key"


@dataclass(frozen=True)
class SpeechServer:
    """A running speech service."""

    url: str  # ws://127.0.0.1:PORT
    key: str
    settings: Settings


@pytest_asyncio.fixture(scope="session")
async def speech_server() -> AsyncIterator[SpeechServer]:
    settings = Settings(
        speech_api_key=SPEECH_KEY, speech_idle_timeout_s=3.0, speech_max_queued_messages=6
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), serve_app(app) as port:
        yield SpeechServer(f"ws://127.0.0.1:{port}", SPEECH_KEY, settings)


def utterance() -> bytes:
    """'Hello, I would like to book a table for four people on Friday at seven.' (espeak-ng,
    8 kHz µ-law; tests/assets/speech/make_utterance.sh made it)."""
    return (ASSETS / "book_table.ulaw").read_bytes()


def silence(ms: int) -> bytes:
    """µ-law digital silence."""
    return b"\xff" * (8 * ms)


def frames(audio: bytes, size: int = 160) -> list[bytes]:
    """Audio cut into Twilio-sized frames (20 ms)."""
    return [audio[i : i + size] for i in range(0, len(audio), size)]
