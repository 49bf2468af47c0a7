"""The simulators' CPU shortcuts change nothing observable: pre-encoded caller media messages
are byte for byte what json.dumps made, the STT engine's skip of idle frames emits exactly
the full scan's messages, the TTS audio cache returns the same audio, the STT drop works on
uvloop (what `python -m sim` runs on), and frame waiters never outlive the pacer."""

from __future__ import annotations

import asyncio
import base64
import json
import math
from typing import Any

import httpx
import pytest
import uvloop
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from sim import deepgram_stt_server as stt_srv
from sim import deepgram_tts_audio as tts_audio
from sim.stt_script import DgMessage, SttEngineOptions, SttScriptEngine
from sim.twilio_call_model import CallScript, TwilioCallerOptions
from sim.twilio_call_runner import CallRun
from sim.twilio_media import (
    SILENCE_B64,
    MediaStreamSession,
    silence_frame,
    speech_frame,
    speech_frame_b64,
)
from tests.servers import serve_app

GUARD_S = 20  # hang guard only; never asserted on


class _CapturingWs:
    def __init__(self) -> None:
        self.sent: list[str | bytes] = []

    async def send(self, data: str | bytes) -> None:
        self.sent.append(data)


def _expected_media(seq: int, chunk: int, ts: Any, payload: bytes, stream_sid: str) -> str:
    """The message as the simulator used to build it: a dict through json.dumps."""
    full: dict[str, Any] = {"event": "media", "sequenceNumber": str(seq)}
    full.update(
        {
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(ts),
                "payload": base64.b64encode(payload).decode(),
            }
        }
    )
    full["streamSid"] = stream_sid
    return json.dumps(full)


@pytest.mark.parametrize("stream_sid", ["MZ" + "0a" * 16, 'MZ"odd\\sid\u00e9'])
async def test_media_messages_are_byte_identical_to_json_dumps(stream_sid: str) -> None:
    ws = _CapturingWs()
    session = MediaStreamSession(
        ws,  # type: ignore[arg-type]
        url="ws://x",
        account_sid="AC" + "0" * 32,
        call_sid="CA" + "1" * 32,
        stream_sid=stream_sid,
    )
    await session.send_mark_echo("m1")  # numbering is shared with the other messages
    await session.send_media_frame(silence_frame(), timestamp_ms=0)
    await session.send_media_payload(speech_frame_b64(3), 20)
    await session.send_media_payload(SILENCE_B64, 123456)
    await session.send_media_frame(b"\x00\x01\xfe", timestamp_ms=-5)
    assert ws.sent[1:] == [
        _expected_media(2, 1, 0, silence_frame(), stream_sid),
        _expected_media(3, 2, 20, speech_frame(3), stream_sid),
        _expected_media(4, 3, 123456, silence_frame(), stream_sid),
        _expected_media(5, 4, -5, b"\x00\x01\xfe", stream_sid),
    ]
    session.stream_sid = "MZother"
    await session.send_media_payload(SILENCE_B64, 40)
    assert ws.sent[-1] == _expected_media(6, 5, 40, silence_frame(), "MZother")


def test_cached_speech_payloads_match_the_frames() -> None:
    for i in (0, 1, 57, 400, 10_000):
        assert speech_frame_b64(i) == base64.b64encode(speech_frame(i)).decode()
    assert SILENCE_B64 == base64.b64encode(silence_frame()).decode()


class _FullScanEngine(SttScriptEngine):
    """The engine without its skip: every feed scans every utterance."""

    def _drain(self, now: float) -> list[DgMessage]:
        self._next_due = -math.inf
        return super()._drain(now)


def test_stt_engine_skip_emits_what_a_full_scan_emits() -> None:
    opts = SttEngineOptions(
        interim_results=True, endpointing_ms=300, utterance_end_ms=1000, vad_events=True
    )
    fast, full = SttScriptEngine(opts), _FullScanEngine(opts)
    steps: list[tuple[str, Any]] = [("add", ("Hi, what are your opening hours?", 400, 2200))]
    steps += [("feed", 160)] * 150
    steps += [("add", ("Sorry, how much is a haircut?", 3500, 5000))]
    steps += [("feed", 160)] * 120 + [("finalize", None)] + [("feed", 333)] * 60
    steps += [("add", ("Bye", 100, 9000)), ("feed", 160), ("finalize", None)]
    steps += [("feed", 160)] * 200
    emitted = 0
    for kind, arg in steps:
        if kind == "add":
            fast.add_utterance(*arg)
            full.add_utterance(*arg)
            continue
        if kind == "feed":
            got, want = fast.feed(b"\xff" * arg), full.feed(b"\xff" * arg)
        else:
            got, want = fast.finalize(), full.finalize()
        assert got == want
        emitted += len(got)
    assert emitted > 10  # the script produced interims, finals and UtteranceEnds


def test_tts_audio_cache_returns_the_rendered_audio() -> None:
    text = "We're open Monday to Friday from nine in the morning until six in the evening."
    for encoding, rate in (("mulaw", 8000), ("linear16", 24000), ("alaw", 16000)):
        first = tts_audio.synthesize(text, 60.0, rate, encoding)
        assert first == tts_audio._synthesize(text, 60.0, rate, encoding)
        assert tts_audio.synthesize(text, 60.0, rate, encoding) == first
    with pytest.raises(ValueError):
        tts_audio.synthesize(text, 60.0, 8000, "opus")


def test_tts_audio_cache_is_bounded_in_bytes() -> None:
    cache = tts_audio._AudioCache(max_bytes=8000)
    for i in range(10):
        cache.put((f"text {i}", 60.0, 8000, "mulaw"), bytes(1000))
    assert cache.get(("text 0", 60.0, 8000, "mulaw")) is None  # evicted, oldest first
    assert cache.get(("text 9", 60.0, 8000, "mulaw")) == bytes(1000)
    cache.put(("huge", 60.0, 8000, "mulaw"), bytes(1001))  # > 1/8 of the budget: not kept
    assert cache.get(("huge", 60.0, 8000, "mulaw")) is None


def test_stt_drop_abort_resets_the_socket_on_uvloop() -> None:
    """`python -m sim` serves on uvloop, whose transports are not asyncio.Transport."""

    async def scenario() -> ConnectionClosed | None:
        app = stt_srv.create_app(stt_srv.DeepgramSttSimOptions())
        async with serve_app(app) as port:
            url = f"ws://127.0.0.1:{port}/v1/listen?encoding=mulaw&sample_rate=8000&tag=CAuv"
            headers = {"Authorization": "Token dg-sim"}
            async with ws_connect(url, additional_headers=headers) as ws:
                await ws.send(b"\xff" * 160)
                async with httpx.AsyncClient() as http:
                    resp = await http.post(
                        f"http://127.0.0.1:{port}/sim/listen/drop",
                        json={"tag": "CAuv", "mode": "abort"},
                    )
                assert resp.status_code == 200, resp.text
                try:
                    async with asyncio.timeout(GUARD_S):
                        await ws.recv()
                except ConnectionClosed as exc:
                    return exc
        return None

    closed = uvloop.run(scenario())
    assert closed is not None and closed.rcvd is None  # reset: no close frame


async def test_frame_waiters_wake_when_ready_and_when_the_pacer_stops() -> None:
    run = CallRun(TwilioCallerOptions(), CallScript(lines=[]), None)
    try:
        run._pacing = True
        flag = {"ready": False}
        ready = asyncio.create_task(run.until_frame(lambda: flag["ready"]))
        never = asyncio.create_task(run.until_frame(lambda: False))
        cancelled = asyncio.create_task(run.until_frame(lambda: False))
        await asyncio.sleep(0)  # all three registered
        cancelled.cancel()
        run._wake_frame_waiters()
        await asyncio.sleep(0)
        assert not ready.done() and not never.done()
        flag["ready"] = True
        run._wake_frame_waiters()
        async with asyncio.timeout(GUARD_S):
            await ready
        assert not never.done() and len(run._frame_waiters) == 1
        run._pacing = False
        run._wake_frame_waiters(everyone=True)  # what _pace does when it ends
        async with asyncio.timeout(GUARD_S):
            await never
        assert run._frame_waiters == []
        async with asyncio.timeout(GUARD_S):
            await run.until_frame(lambda: False)  # no pacer: one frame's sleep, no hang
    finally:
        await run.http.aclose()
