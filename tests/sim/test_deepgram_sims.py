"""Deepgram STT/TTS simulators: pure engine tests + real servers driven by deepgram-sdk."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment
from deepgram.speak.v1.types.speak_v1text import SpeakV1Text
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from sim import deepgram_stt_server as stt_srv
from sim import deepgram_tts_server as tts_srv
from sim.deepgram_tts_audio import synthesize
from sim.deepgram_tts_server import audio_bytes_for_text
from tests.servers import serve_app

live = pytest.mark.asyncio(loop_scope="session")  # share the servers' event loop

KEY = "dg-sim"
FRAME = 160  # 20 ms of 8 kHz µ-law
SILENCE = b"\xff" * FRAME
SPEECH = bytes(range(0x10, 0x10 + FRAME))
GUARD_S = 20  # hang guard only; never asserted on


# ------------------------------------------------------------------ live servers


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def stt_port() -> AsyncIterator[int]:
    async with serve_app(stt_srv.create_app(stt_srv.DeepgramSttSimOptions())) as port:
        yield port


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def tts_port() -> AsyncIterator[int]:
    opts = tts_srv.DeepgramTtsSimOptions(first_byte_latency_ms=5, realtime_factor=20.0)
    async with serve_app(tts_srv.create_app(opts)) as port:
        yield port


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def slow_tts_port() -> AsyncIterator[int]:
    opts = tts_srv.DeepgramTtsSimOptions(first_byte_latency_ms=0, realtime_factor=1.0)
    async with serve_app(tts_srv.create_app(opts)) as port:
        yield port


def _client(port: int, key: str = KEY) -> AsyncDeepgramClient:
    url_http, url_ws = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    env = DeepgramClientEnvironment(
        base=url_http, production=url_ws, agent=url_ws, agent_rest=url_http
    )
    return AsyncDeepgramClient(api_key=key, environment=env)


def _listen(port: int, tag: str, key: str = KEY, **kw: Any) -> Any:
    params: dict[str, Any] = dict(
        model="nova-3",
        encoding="mulaw",
        sample_rate=8000,
        interim_results=True,
        endpointing=300,
        utterance_end_ms=1000,
        vad_events=True,
        smart_format=True,
        tag=tag,
    )
    params.update(kw)
    return _client(port, key).listen.v1.connect(**params)


async def _script(port: int, tag: str, text: str, start_ms: int, end_ms: int) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"http://127.0.0.1:{port}/sim/listen/script",
            json={"tag": tag, "text": text, "start_ms": start_ms, "end_ms": end_ms},
        )
        r.raise_for_status()


async def _drain(conn: Any) -> list[Any]:
    """All messages until the server closes the socket."""
    out: list[Any] = []
    async with asyncio.timeout(GUARD_S):
        async for msg in conn:
            out.append(msg)
    return out


async def _until(conn: Any, pred: Callable[[Any], bool]) -> list[Any]:
    out: list[Any] = []
    async with asyncio.timeout(GUARD_S):
        async for msg in conn:
            out.append(msg)
            if pred(msg):
                return out
    raise AssertionError(f"socket closed before expected message; got {out!r}")


def _ws(conn: Any) -> Any:
    return conn._websocket  # the SDK exposes no close code accessor


async def _stream(conn: Any, ms: int, speech: tuple[int, int] | None = None) -> None:
    for i in range(ms // 20):
        t = i * 20
        await conn.send_media(SPEECH if speech and speech[0] <= t < speech[1] else SILENCE)


@live
async def test_stt_full_utterance_flow(stt_port: int) -> None:
    text = "Hi, I'd like to book a table for two."
    await _script(stt_port, "CA-full", text, 400, 1600)
    async with _listen(stt_port, "CA-full") as conn:
        await _stream(conn, 3000, speech=(400, 1600))
        await conn.send_close_stream()
        msgs = await _drain(conn)
        assert _ws(conn).close_code == 1000
    types = [m.type for m in msgs]
    assert types[0] == "SpeechStarted" and msgs[0].timestamp == 0.4
    interims = [m for m in msgs if m.type == "Results" and not m.is_final]
    assert len(interims) >= 3
    lengths = [len(m.channel.alternatives[0].transcript) for m in interims]
    assert lengths == sorted(lengths) and text.startswith(
        interims[0].channel.alternatives[0].transcript
    )
    finals = [m for m in msgs if m.type == "Results" and m.is_final]
    assert len(finals) == 1 and finals[0].speech_final is True
    assert finals[0].channel.alternatives[0].transcript == text
    assert finals[0].channel.alternatives[0].words[0].punctuated_word == "Hi,"
    assert types.index("UtteranceEnd") > types.index("Results")
    ue = next(m for m in msgs if m.type == "UtteranceEnd")
    assert ue.last_word_end == 1.6
    assert types[-1] == "Metadata"
    assert msgs[-1].duration == 3.0
    expected = b"".join(SPEECH if 400 <= i * 20 < 1600 else SILENCE for i in range(150))
    assert msgs[-1].sha256 == hashlib.sha256(expected).hexdigest()
    async with httpx.AsyncClient() as http:
        sessions = (await http.get(f"http://127.0.0.1:{stt_port}/sim/listen/sessions")).json()
    mine = [s for s in sessions if s["tag"] == "CA-full"]
    assert mine[0]["bytes"] == 24000 and mine[0]["audio_ms"] == 3000.0
    assert mine[0]["closed"] is True and mine[0]["messages_sent"] == len(msgs)


@live
async def test_stt_the_same_script_registered_twice_is_heard_once(stt_port: int) -> None:
    """A caller retrying a script request whose answer it lost must not be heard twice."""
    text = "How much is a haircut?"
    await _script(stt_port, "CA-twice", text, 400, 1600)
    async with _listen(stt_port, "CA-twice") as conn:
        await _script(stt_port, "CA-twice", text, 400, 1600)  # the retry, once the socket is open
        await _stream(conn, 3000, speech=(400, 1600))
        await conn.send_close_stream()
        msgs = await _drain(conn)
    finals = [m for m in msgs if m.type == "Results" and m.is_final]
    assert [m.channel.alternatives[0].transcript for m in finals] == [text]
    assert [m.type for m in msgs].count("SpeechStarted") == 1


@live
async def test_stt_a_withdrawn_script_is_not_heard(stt_port: int) -> None:
    """A caller whose registration came too late withdraws it and registers a later window:
    only the later one is heard (scripted words need no audio: a stale window was heard too)."""
    text = "And how much is a beard trim?"
    async with _listen(stt_port, "CA-withdrawn") as conn:
        await _script(stt_port, "CA-withdrawn", text, 100, 1300)
        async with httpx.AsyncClient() as http:
            r = await http.post(
                f"http://127.0.0.1:{stt_port}/sim/listen/unscript",
                json={"tag": "CA-withdrawn", "text": text, "start_ms": 100, "end_ms": 1300},
            )
            r.raise_for_status()
        await _script(stt_port, "CA-withdrawn", text, 1500, 2700)
        await _stream(conn, 4000, speech=(1500, 2700))
        await conn.send_close_stream()
        msgs = await _drain(conn)
    finals = [m for m in msgs if m.type == "Results" and m.is_final]
    assert [m.channel.alternatives[0].transcript for m in finals] == [text]
    assert [m.timestamp for m in msgs if m.type == "SpeechStarted"] == [1.5]


@live
async def test_stt_script_registered_after_open_and_finalize(stt_port: int) -> None:
    async with _listen(stt_port, "CA-late", vad_events=False) as conn:
        await _stream(conn, 200)
        await _script(stt_port, "CA-late", "one two three four", 200, 1000)
        await _stream(conn, 500, speech=(0, 500))  # audio time now 700 ms
        await conn.send_finalize()
        got = await _until(conn, lambda m: getattr(m, "from_finalize", False))
        fin = got[-1]
        assert fin.is_final is True and fin.speech_final is False
        assert fin.channel.alternatives[0].transcript == "one two"
        await conn.send_keep_alive()
        await _stream(conn, 400, speech=(0, 300))  # audio time now 1100 ms
        await conn.send_media(b"")  # empty frame == CloseStream
        rest = await _drain(conn)
        assert _ws(conn).close_code == 1000
    assert [m.type for m in rest][-1] == "Metadata"
    finals = [m for m in rest if m.type == "Results" and m.is_final]
    assert [m.channel.alternatives[0].transcript for m in finals] == ["three four"]
    interims = [m for m in rest if m.type == "Results" and not m.is_final]
    # at 800 ms (every 200 ms) and at the speech end, 1000 ms (the hypothesis with every word)
    assert [m.channel.alternatives[0].transcript for m in interims] == ["three", "three four"]
    assert finals[0].from_finalize is True  # flushed by the close


@live
async def test_stt_close_stream_without_audio_yields_metadata(stt_port: int) -> None:
    async with _listen(stt_port, "CA-empty") as conn:
        await conn.send_close_stream()
        msgs = await _drain(conn)
        assert _ws(conn).close_code == 1000
    assert [m.type for m in msgs] == ["Metadata"]
    assert msgs[0].sha256 == hashlib.sha256(b"").hexdigest() and msgs[0].duration == 0.0


@live
async def test_stt_wrong_key_is_401(stt_port: int) -> None:
    with pytest.raises(ApiError) as err:
        async with _listen(stt_port, "CA-x", key="nope"):
            pass
    assert err.value.status_code == 401


@live
async def test_stt_capitalised_bool_is_400(stt_port: int) -> None:
    with pytest.raises(ApiError) as err:
        async with _listen(stt_port, "CA-x", interim_results="True"):
            pass
    assert err.value.status_code == 400


@live
async def test_stt_denial_carries_dg_headers(stt_port: int) -> None:
    url = f"ws://127.0.0.1:{stt_port}/v1/listen?encoding=mulaw"
    with pytest.raises(InvalidStatus) as err:
        async with ws_connect(url, additional_headers={"Authorization": f"Token {KEY}"}):
            pass
    resp = err.value.response
    assert resp.status_code == 400
    assert "sample_rate" in resp.headers["dg-error"] and resp.headers["dg-request-id"]
    assert json.loads(resp.body)["err_msg"] == resp.headers["dg-error"]


@live
async def test_stt_bearer_and_bad_control_message(stt_port: int) -> None:
    url = f"ws://127.0.0.1:{stt_port}/v1/listen?encoding=linear16&sample_rate=16000"
    async with ws_connect(url, additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
        assert ws.response.headers["dg-request-id"]
        await ws.send(json.dumps({"type": "Nonsense"}))
        async with asyncio.timeout(GUARD_S):
            await ws.wait_closed()
    assert ws.close_code == 1008 and "Nonsense" in (ws.close_reason or "")


@live
async def test_stt_idle_timeout_closes_1011() -> None:
    app = stt_srv.create_app(stt_srv.DeepgramSttSimOptions(idle_timeout_s=0.3))
    async with serve_app(app) as port, _listen(port, "CA-idle") as conn:
        msgs = await _drain_allow_error(conn)
        assert msgs == []
        assert _ws(conn).close_code == 1011 and _ws(conn).close_reason == "NET-0001"


async def _drain_allow_error(conn: Any) -> list[Any]:
    try:
        return await _drain(conn)
    except ConnectionClosedError:
        return []


# ------------------------------------------------------------------ TTS


def _speak(port: int, key: str = KEY, **kw: Any) -> Any:
    params: dict[str, Any] = dict(model="aura-2-thalia-en", encoding="mulaw", sample_rate=8000)
    params.update(kw)
    return _client(port, key).speak.v1.connect(**params)


def _split(msgs: list[Any]) -> tuple[list[str], bytes]:
    return [m.type for m in msgs if not isinstance(m, bytes)], b"".join(
        m for m in msgs if isinstance(m, bytes)
    )


@live
async def test_tts_speak_flush(tts_port: int) -> None:
    async with _speak(tts_port) as conn:
        await conn.send_text(SpeakV1Text(text="Thanks for calling. "))
        await conn.send_text(SpeakV1Text(text="How can I help?"))
        await conn.send_flush()
        msgs = await _until(conn, lambda m: getattr(m, "type", None) == "Flushed")
        await conn.send_close()
        await _drain(conn)
        assert _ws(conn).close_code == 1000
    assert msgs[0].type == "Metadata" and msgs[0].model_name == "aura-2-thalia-en"
    types, audio = _split(msgs)
    text = "Thanks for calling. How can I help?"
    assert types == ["Metadata", "Flushed"] and msgs[-1].sequence_id == 0
    assert len(audio) == audio_bytes_for_text(text, 60, 8000, 1) == 16800
    assert audio == synthesize(text, 60, 8000, "mulaw")
    assert all(len(m) <= 1600 for m in msgs if isinstance(m, bytes))


@live
async def test_tts_two_flushes_do_not_interleave(tts_port: int) -> None:
    first, second = "aaaa aaaa aaaa", "zzzz"
    async with _speak(tts_port, encoding="linear16", sample_rate=16000) as conn:
        await conn.send_text(SpeakV1Text(text=first))
        await conn.send_flush()
        await conn.send_text(SpeakV1Text(text=second))
        await conn.send_flush()
        msgs = await _until(conn, lambda m: getattr(m, "sequence_id", None) == 1)
    cut = next(i for i, m in enumerate(msgs) if getattr(m, "type", None) == "Flushed")
    assert msgs[cut].sequence_id == 0
    _, audio1 = _split(msgs[:cut])
    types2, audio2 = _split(msgs[cut + 1 :])
    assert audio1 == synthesize(first, 60, 16000, "linear16")
    assert audio2 == synthesize(second, 60, 16000, "linear16")
    assert types2 == ["Flushed"]


@live
async def test_tts_clear_mid_synthesis(slow_tts_port: int) -> None:
    long_text = "This is a long answer that takes several seconds to speak aloud. " * 2
    async with _speak(slow_tts_port) as conn:
        await conn.send_text(SpeakV1Text(text=long_text))
        await conn.send_flush()
        await _until(conn, lambda m: isinstance(m, bytes))
        await conn.send_clear()
        before = await _until(conn, lambda m: getattr(m, "type", None) == "Cleared")
        assert before[-1].sequence_id == 1
        await conn.send_text(SpeakV1Text(text="ok"))
        await conn.send_flush()
        after = await _until(conn, lambda m: getattr(m, "type", None) == "Flushed")
    _, audio_before = _split(before)
    assert len(audio_before) < audio_bytes_for_text(long_text, 60, 8000, 1) // 2
    types, audio_after = _split(after)
    assert types == ["Flushed"] and after[-1].sequence_id == 2
    assert audio_after == synthesize("ok", 60, 8000, "mulaw")  # nothing stale after Cleared


@live
async def test_tts_flush_rate_limit_warns(tts_port: int) -> None:
    async with _speak(tts_port) as conn:
        for _ in range(21):
            await conn.send_flush()
        seen: list[str] = []

        def done(m: Any) -> bool:
            seen.append(getattr(m, "type", "audio"))
            return seen.count("Flushed") == 20 and "Warning" in seen

        msgs = await _until(conn, done)
        await conn.send_text(SpeakV1Text(text="x"))
        await conn.send_clear()
        tail = await _until(conn, lambda m: getattr(m, "type", None) == "Cleared")
    types, audio = _split(msgs)
    assert types.count("Flushed") == 20 and audio == b""
    warning = next(m for m in msgs if getattr(m, "type", None) == "Warning")
    assert warning.code == "FLUSH_LIMIT_EXCEEDED"
    assert [m.sequence_id for m in msgs if getattr(m, "type", None) == "Flushed"] == list(range(20))
    assert tail[-1].sequence_id == 20


@live
async def test_tts_handshake_errors(tts_port: int) -> None:
    with pytest.raises(ApiError) as err:
        async with _speak(tts_port, key="bad"):
            pass
    assert err.value.status_code == 401
    for bad in ({"encoding": "mp3"}, {"encoding": "mulaw", "sample_rate": 24000}):
        with pytest.raises(ApiError) as err:
            async with _speak(tts_port, **bad):
                pass
        assert err.value.status_code == 400


@live
async def test_tts_rest(tts_port: int) -> None:
    client = _client(tts_port)
    chunks = [
        c
        async for c in client.speak.v1.audio.generate(
            text="Hello there",
            model="aura-2-thalia-en",
            encoding="mulaw",
            sample_rate=8000,
            container="none",
        )
    ]
    assert b"".join(chunks) == synthesize("Hello there", 60, 8000, "mulaw")
    url = f"http://127.0.0.1:{tts_port}/v1/speak"
    async with httpx.AsyncClient() as http:
        r = await http.post(
            url,
            params={"model": "aura-2-thalia-en", "encoding": "linear16", "sample_rate": 24000},
            json={"text": "Hi"},
            headers={"Authorization": f"Token {KEY}"},
        )
        unauth = await http.post(url, json={"text": "Hi"})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.content[:4] == b"RIFF" and len(r.content) == 44 + audio_bytes_for_text(
        "Hi", 60, 24000, 2
    )
    assert r.headers["dg-char-count"] == "2" and r.headers["dg-model-name"] == "aura-2-thalia-en"
    assert r.headers["dg-request-id"] and r.headers["dg-model-uuid"]
    assert unauth.status_code == 401 and unauth.headers["dg-error"]


@live
async def test_healthz(stt_port: int, tts_port: int) -> None:
    async with httpx.AsyncClient() as http:
        for port in (stt_port, tts_port):
            assert (await http.get(f"http://127.0.0.1:{port}/healthz")).json()["ok"] is True


@live
async def test_stt_processing_latency_keeps_order_and_intake() -> None:
    app = stt_srv.create_app(stt_srv.DeepgramSttSimOptions(processing_latency_ms=150))
    async with serve_app(app) as port:
        await _script(port, "CA-lat", "Table for two.", 100, 700)
        async with _listen(port, "CA-lat") as conn:
            await _stream(conn, 2000, speech=(100, 700))
            await conn.send_close_stream()
            msgs = await _drain(conn)
        async with httpx.AsyncClient() as http:
            sessions = (await http.get(f"http://127.0.0.1:{port}/sim/listen/sessions")).json()
    types = [m.type for m in msgs]
    assert types[0] == "SpeechStarted" and types[-2:] == ["UtteranceEnd", "Metadata"]
    finals = [m for m in msgs if m.type == "Results" and m.is_final]
    assert [m.channel.alternatives[0].transcript for m in finals] == ["Table for two."]
    assert sessions[0]["bytes"] == 16000 and sessions[0]["close_code"] == 1000
