"""The self-hosted Aura-compatible TTS (`services/speech/tts`) over a real socket, with the
real Piper voice: media's own Deepgram adapter hears speech, Clear cuts audio within one frame,
and malformed input closes the socket with a reason."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from services.media.agent_speech.tts_deepgram import DeepgramTts
from services.media.agent_speech.tts_protocol import TtsCleared, TtsEvent, TtsFlushed
from services.media.agent_speech.tts_rest_fallback import DeepgramRestSynth
from services.speech.tts.speak_rest import speak_rest
from services.speech.tts.speak_socket import serve_speak
from shared.bus.waiting import within
from shared.codecs import ulaw_to_pcm16
from shared.runtime.settings import Settings
from tests.servers import serve_app

AUTH = {"Authorization": "Token dg-sim"}  # Settings().deepgram_api_key: the speech key
LONG_TEXT = (
    "Thanks for calling Bella's Barbershop. We are open from nine in the morning until six "
    "in the evening, Monday to Saturday, and a men's haircut with Maria takes thirty minutes. "
    "Would you like me to book one for you this week?"
)


def speech_app(settings: Settings) -> Starlette:
    async def speak(websocket: WebSocket) -> None:
        await serve_speak(websocket, settings)

    async def speak_post(request: Request) -> Response:
        return await speak_rest(request, settings)

    return Starlette(
        routes=[
            WebSocketRoute("/v1/speak", speak),
            Route("/v1/speak", speak_post, methods=["POST"]),
        ]
    )


@pytest.fixture
async def speech_url() -> AsyncIterator[str]:
    """Real-time pacing with no lead: a frame leaves every 20 ms, so a Clear meets a stream."""
    async with serve_app(speech_app(Settings(speech_tts_lead_ms=0))) as port:
        yield f"ws://127.0.0.1:{port}"


async def _json(ws: websockets.ClientConnection) -> dict[str, object]:
    message = await within(ws.recv(), 30)
    assert isinstance(message, str), "expected a text message"
    payload: dict[str, object] = json.loads(message)
    return payload


async def test_media_adapter_hears_a_sentence_as_speech(speech_url: str) -> None:
    """Media's unchanged Deepgram adapter: µ-law 8 kHz of a plausible length, not silence."""
    tts = DeepgramTts(Settings(deepgram_tts_url=speech_url), "aura-2-thalia-en")
    await tts.open()
    try:
        await tts.speak("Thanks for calling, how can I help you today?")
        chunks: list[TtsEvent] = []
        async for event in tts.events():
            chunks.append(event)
            if isinstance(event, TtsFlushed):
                break
        audio = b"".join(c for c in chunks if isinstance(c, bytes))
    finally:
        await tts.close()
    seconds = len(audio) / 8000
    assert 1.5 < seconds < 6.0, f"{seconds:.2f} s of audio for nine words"
    frames = [c for c in chunks if isinstance(c, bytes)]
    assert all(len(f) == 160 for f in frames[:-1]), "20 ms µ-law frames"
    pcm = ulaw_to_pcm16(audio).astype(np.float64)
    windows = pcm[: len(pcm) // 160 * 160].reshape(-1, 160)
    loud = np.sqrt((windows**2).mean(axis=1)) > 500
    assert loud.mean() > 0.4, f"only {loud.mean():.0%} of frames carry sound"


async def test_clear_stops_audio_within_one_frame(speech_url: str) -> None:
    async with websockets.connect(
        f"{speech_url}/v1/speak?encoding=mulaw&sample_rate=8000", additional_headers=AUTH
    ) as ws:
        metadata = await _json(ws)
        assert metadata["type"] == "Metadata"
        await ws.send(json.dumps({"type": "Speak", "text": LONG_TEXT}))
        await ws.send(json.dumps({"type": "Flush"}))
        first = await within(ws.recv(), 30)
        assert isinstance(first, bytes) and len(first) == 160
        await ws.send(json.dumps({"type": "Clear"}))
        late_frames = 0
        while isinstance(message := await within(ws.recv(), 30), bytes):
            late_frames += 1
        assert json.loads(message) == {"type": "Cleared", "sequence_id": 1}
        assert late_frames <= 1, f"{late_frames} frames after Clear"
        # Nothing of the cleared text follows: an empty Flush is answered with no audio.
        await ws.send(json.dumps({"type": "Flush"}))
        assert await _json(ws) == {"type": "Flushed", "sequence_id": 2}
        # Text after the Clear is spoken normally.
        await ws.send(json.dumps({"type": "Speak", "text": "Sure."}))
        await ws.send(json.dumps({"type": "Flush"}))
        after = 0
        while isinstance(message := await within(ws.recv(), 30), bytes):
            after += 1
        assert json.loads(message) == {"type": "Flushed", "sequence_id": 3}
        assert after > 10, "a short word is still spoken after a Clear"


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        ("not json", 1008, "not JSON"),
        ('{"type": "Shout"}', 1008, "unsupported message type"),
        ('{"type": "Speak", "text": 5}', 1008, "string 'text'"),
        (b"\x00\x01", 1003, "binary frames"),
    ],
)
async def test_malformed_message_closes_with_a_reason(
    speech_url: str, frame: str | bytes, code: int, reason: str
) -> None:
    async with websockets.connect(
        f"{speech_url}/v1/speak?encoding=mulaw", additional_headers=AUTH
    ) as ws:
        await _json(ws)
        await ws.send(frame)
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await within(ws.recv(), 30)
        assert ws.close_code == code
        assert reason in (ws.close_reason or "")


async def test_bad_audio_format_is_refused_at_the_handshake(speech_url: str) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            f"{speech_url}/v1/speak?encoding=mp3", additional_headers=AUTH
        ):
            pass
    assert refused.value.response.status_code == 400
    assert b"Unsupported encoding" in refused.value.response.body


async def test_clear_while_the_reader_is_still_idle(speech_url: str) -> None:
    """Media's adapter: a Clear right after a Speak is confirmed, and nothing of it is heard."""
    tts = DeepgramTts(Settings(deepgram_tts_url=speech_url), "")
    await tts.open()
    events: asyncio.Queue[TtsEvent] = asyncio.Queue()

    async def read() -> None:
        async for item in tts.events():
            events.put_nowait(item)

    reader = asyncio.create_task(read())
    try:
        await tts.speak(LONG_TEXT)
        await tts.clear()
        seen: list[TtsEvent] = []
        while not seen or not isinstance(seen[-1], TtsCleared):
            seen.append(await within(events.get(), 30))
        assert not any(isinstance(item, TtsFlushed) for item in seen)
        assert sum(len(s) for s in seen if isinstance(s, bytes)) < 8000 * 2
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await tts.close()


async def test_media_rest_fallback_gets_speech(speech_url: str) -> None:
    """Media's REST fallback (`POST /v1/speak`, raw µ-law) works against the same server."""
    http = speech_url.replace("ws://", "http://")
    synth = DeepgramRestSynth(Settings(deepgram_tts_url=speech_url, deepgram_tts_rest_url=http), "")
    try:
        audio = b"".join([chunk async for chunk in synth.synthesize("See you on Tuesday.")])
    finally:
        await synth.aclose()
    assert 0.7 < len(audio) / 8000 < 4.0
    assert np.sqrt((ulaw_to_pcm16(audio).astype(np.float64) ** 2).mean()) > 500


@pytest.mark.parametrize(
    ("query", "body", "status"),
    [
        ("?encoding=mulaw", b"not json", 400),
        ("?encoding=mulaw", b'{"text": ""}', 400),
        ("?encoding=mp3", b'{"text": "hi"}', 400),
        ("?encoding=mulaw", b'{"text": "' + b"a" * 20000 + b'"}', 413),
    ],
)
async def test_rest_refuses_bad_requests_with_a_message(
    speech_url: str, query: str, body: bytes, status: int
) -> None:
    http = speech_url.replace("ws://", "http://")
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{http}/v1/speak{query}", content=body, headers=AUTH)
    assert response.status_code == status
    assert response.json()["err_msg"]


async def test_a_wrong_key_is_refused(speech_url: str) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            f"{speech_url}/v1/speak", additional_headers={"Authorization": "Token nope"}
        ):
            pass
    assert refused.value.response.status_code == 401
