"""REST fallback of the TTS adapters, against the Deepgram and ElevenLabs simulators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from services.media.agent_speech.tts_factory import make_tts
from services.media.agent_speech.tts_protocol import (
    TtsCleared,
    TtsFlushed,
    UnknownTtsProvider,
)
from services.media.agent_speech.tts_rest_fallback import FallbackTts
from shared.runtime.settings import Settings
from sim import deepgram_tts_server as dg_srv
from sim import elevenlabs_tts_server as el_srv
from sim.deepgram_tts_audio import synthesize
from tests.integration.test_tts_elevenlabs import (
    KEY,
    TEXTS,
    el_audio,
    opened,
    refused_port,
    sim_sessions,
)
from tests.servers import serve_app

DG_MS_PER_CHAR = 60.0


def dg_audio(text: str) -> bytes:
    """What the Deepgram simulator sends for one flushed text (mulaw 8 kHz, text as sent)."""
    return synthesize(text, DG_MS_PER_CHAR, 8000, "mulaw")


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def dg_port() -> AsyncIterator[int]:
    opts = dg_srv.DeepgramTtsSimOptions(first_byte_latency_ms=5, realtime_factor=50.0)
    async with serve_app(dg_srv.create_app(opts)) as port:
        yield port


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def el_port() -> AsyncIterator[int]:
    opts = el_srv.ElevenLabsTtsSimOptions(first_byte_latency_ms=5, realtime_factor=50.0)
    async with serve_app(el_srv.create_app(opts)) as port:
        yield port


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def el_slow_port() -> AsyncIterator[int]:
    opts = el_srv.ElevenLabsTtsSimOptions(first_byte_latency_ms=0, realtime_factor=4.0)
    async with serve_app(el_srv.create_app(opts)) as port:
        yield port


def settings(**kw: Any) -> Settings:
    values: dict[str, Any] = {
        "elevenlabs_api_key": KEY,
        "deepgram_api_key": "dg-sim",
        "tts_connect_timeout_s": 5.0,
    }
    values.update(kw)
    return Settings(**values)


def fallback(tts: object) -> FallbackTts:
    assert isinstance(tts, FallbackTts)
    return tts


async def test_unknown_provider_is_a_clear_error() -> None:
    with pytest.raises(UnknownTtsProvider, match="'azure'"):
        make_tts(settings(), "azure", "")


async def test_deepgram_socket_works_through_the_wrapper(dg_port: int) -> None:
    tts = fallback(make_tts(settings(deepgram_tts_url=f"ws://127.0.0.1:{dg_port}"), "deepgram", ""))
    async with opened(tts) as log:
        for text in TEXTS:
            await tts.speak(text)
        await log.wait_for(lambda: log.count(TtsFlushed) == len(TEXTS))
        assert log.segments() == [dg_audio(t) for t in TEXTS]
        assert not tts.using_rest


async def test_deepgram_refused_socket_falls_back_to_rest(dg_port: int) -> None:
    cfg = settings(
        deepgram_tts_url=f"ws://127.0.0.1:{refused_port()}",
        deepgram_tts_rest_url=f"http://127.0.0.1:{dg_port}",
    )
    tts = fallback(make_tts(cfg, "deepgram", "aura-2-thalia-en"))
    async with opened(tts) as log:
        assert tts.using_rest and "failed to open" in (tts.fallback_reason or "")
        for text in TEXTS:
            await tts.speak(text)
        await log.wait_for(lambda: log.count(TtsFlushed) == len(TEXTS))
        assert log.segments() == [dg_audio(t) for t in TEXTS]


async def test_elevenlabs_refused_socket_falls_back_to_rest(el_port: int) -> None:
    cfg = settings(
        elevenlabs_tts_url=f"ws://127.0.0.1:{refused_port()}",
        elevenlabs_rest_url=f"http://127.0.0.1:{el_port}",
    )
    tts = fallback(make_tts(cfg, "elevenlabs", "voice-rest-fb"))
    async with opened(tts) as log:
        assert tts.using_rest
        for text in TEXTS:
            await tts.speak(text)
        await log.wait_for(lambda: log.count(TtsFlushed) == len(TEXTS))
        assert log.segments() == [el_audio(t) for t in TEXTS]
    rest = [r for r in (await sim_sessions(el_port))["rest"] if r["voice_id"] == "voice-rest-fb"]
    assert [(r["text"], r["output_format"]) for r in rest] == [(t, "ulaw_8000") for t in TEXTS]


async def test_rest_clear_mid_segment(el_slow_port: int) -> None:
    cfg = settings(
        elevenlabs_tts_url=f"ws://127.0.0.1:{refused_port()}",
        elevenlabs_rest_url=f"http://127.0.0.1:{el_slow_port}",
    )
    long_a = "This is a rather long first sentence that the caller interrupts halfway."
    tts = fallback(make_tts(cfg, "elevenlabs", "voice-rest-clear"))
    async with opened(tts) as log:
        await tts.speak(long_a)
        await tts.speak(TEXTS[0])
        await log.wait_for(lambda: log.audio_bytes() > 0)
        await tts.clear()
        cut = len(log.items)
        await tts.speak(TEXTS[1])
        await log.wait_for(lambda: log.count(TtsFlushed) == 1)
        assert isinstance(log.items[cut], TtsCleared)
        assert log.segments(after=cut) == [el_audio(TEXTS[1])]
        assert log.audio_bytes() - len(el_audio(TEXTS[1])) < len(el_audio(long_a))


async def test_socket_dying_mid_segment_resumes_over_rest(el_slow_port: int) -> None:
    cfg = settings(elevenlabs_tts_url=f"ws://127.0.0.1:{el_slow_port}")
    long_a = "This sentence is long enough to be cut in the middle by a dying socket."
    tts = fallback(make_tts(cfg, "elevenlabs", "voice-dies"))
    async with opened(tts) as log:
        assert not tts.using_rest
        await tts.speak(long_a)
        await tts.speak(TEXTS[0])
        await log.wait_for(lambda: log.audio_bytes() > 0)
        async with httpx.AsyncClient() as http:
            dropped = await http.post(f"http://127.0.0.1:{el_slow_port}/sim/tts/drop")
        assert dropped.json()["dropped"] >= 1
        await tts.speak(TEXTS[1])
        await log.wait_for(lambda: log.count(TtsFlushed) == 3)
        assert tts.using_rest and "1011" in (tts.fallback_reason or "")
        assert log.segments() == [el_audio(long_a), el_audio(TEXTS[0]), el_audio(TEXTS[1])]
    sessions = await sim_sessions(el_slow_port)
    rest = [r for r in sessions["rest"] if r["voice_id"] == "voice-dies"]
    assert [r["text"] for r in rest] == [long_a, TEXTS[0], TEXTS[1]]
    sock = next(s for s in sessions["sockets"] if s["voice_id"] == "voice-dies")
    assert sock["close_code"] == 1011
    assert 0 < sock["contexts"][0]["audio_bytes"] < len(el_audio(long_a))


async def test_rest_failing_too_ends_the_stream_with_an_error() -> None:
    cfg = settings(
        elevenlabs_tts_url=f"ws://127.0.0.1:{refused_port()}",
        elevenlabs_rest_url=f"http://127.0.0.1:{refused_port()}",
    )
    tts = fallback(make_tts(cfg, "elevenlabs", "voice-nothing"))
    async with opened(tts) as log:
        await tts.speak(TEXTS[0])
        await log.wait_for(lambda: log.ended)
        assert log.error is not None and "REST request failed" in str(log.error)
        assert log.items == []
