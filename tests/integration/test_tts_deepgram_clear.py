"""Deepgram Aura over the real SDK and simulator: a clear is confirmed as a clear, and the
segments spoken after it flush normally (deepgram-sdk 7.17 parses `Cleared` as a Flushed model;
the adapter must dispatch on the wire type)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from services.media.agent_speech.tts_factory import make_tts
from services.media.agent_speech.tts_protocol import TtsCleared, TtsEvent, TtsFlushed
from shared.bus.waiting import within
from shared.runtime.settings import Settings
from sim.deepgram_tts_server import DeepgramTtsSimOptions, create_app
from tests.servers import serve_app


@pytest.fixture
async def tts_url() -> AsyncIterator[str]:
    async with serve_app(create_app(DeepgramTtsSimOptions(realtime_factor=2.0))) as port:
        yield f"ws://127.0.0.1:{port}"


async def test_clear_is_confirmed_and_later_segments_flush(tts_url: str) -> None:
    tts = make_tts(Settings(deepgram_tts_url=tts_url), "deepgram", "")
    await tts.open()
    events: asyncio.Queue[TtsEvent] = asyncio.Queue()

    async def read() -> None:
        async for item in tts.events():
            events.put_nowait(item)

    reader = asyncio.create_task(read())
    try:
        await tts.speak("A men's haircut is twenty five pounds and takes thirty minutes.")
        assert isinstance(await within(events.get(), 10), bytes)  # synthesis is under way
        await tts.clear()
        seen: list[TtsEvent] = []
        while not seen or not isinstance(seen[-1], TtsCleared):
            seen.append(await within(events.get(), 10))
        assert not any(isinstance(item, TtsFlushed) for item in seen)
        await tts.speak("Sorry, could you say that again?")
        after: list[TtsEvent] = []
        while not after or not isinstance(after[-1], TtsFlushed):
            after.append(await within(events.get(), 10))
        assert sum(len(a) for a in after if isinstance(a, bytes)) > 0
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await tts.close()
