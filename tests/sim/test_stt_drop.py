"""STT simulator: dropping a call's socket and resuming its script on a new socket.

The real deepgram SDK talks to the real simulator server over real sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment
from websockets.exceptions import ConnectionClosed

from sim import deepgram_stt_server as stt_srv
from sim.deepgram_common import QueryError
from sim.stt_reconnect import audio_offset_ms, parse_extras, socket_window
from tests.servers import serve_app

live = pytest.mark.asyncio(loop_scope="session")

KEY = "dg-sim"
FRAME_MS = 20
SILENCE = b"\xff" * 160
SPEECH = bytes(range(0x10, 0x10 + 160))
GUARD_S = 20  # hang guard only; never asserted on
TEXT = "I'd like to book a haircut tomorrow at ten"  # 9 words over [400, 2400): ~222 ms each
HEARD_AFTER_1400 = "a haircut tomorrow at ten"  # words whose middle is at or after 1400 ms


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def port() -> AsyncIterator[int]:
    async with serve_app(stt_srv.create_app(stt_srv.DeepgramSttSimOptions())) as p:
        yield p


def _listen(port: int, tag: str, offset_ms: int | None = None, **kw: Any) -> Any:
    url_http, url_ws = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    env = DeepgramClientEnvironment(
        base=url_http, production=url_ws, agent=url_ws, agent_rest=url_http
    )
    params: dict[str, Any] = dict(
        model="nova-3",
        encoding="mulaw",
        sample_rate=8000,
        interim_results=True,
        endpointing=300,
        utterance_end_ms=1000,
        vad_events=True,
        tag=tag,
    )
    if offset_ms is not None:
        params["extra"] = f"audio_offset_ms:{offset_ms}"
    params.update(kw)
    return AsyncDeepgramClient(api_key=KEY, environment=env).listen.v1.connect(**params)


async def _post(port: int, path: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(f"http://127.0.0.1:{port}{path}", json=body)


async def _script(port: int, tag: str, text: str, start_ms: int, end_ms: int) -> None:
    body = {"tag": tag, "text": text, "start_ms": start_ms, "end_ms": end_ms}
    (await _post(port, "/sim/listen/script", body)).raise_for_status()


async def _sessions(port: int, tag: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as http:
        r = await http.get(f"http://127.0.0.1:{port}/sim/listen/sessions")
    return [s for s in r.json() if s["tag"] == tag]


async def _stream(conn: Any, from_ms: int, to_ms: int, speech: tuple[int, int]) -> None:
    """Caller audio [from_ms, to_ms) of the call (caller audio time)."""
    for t in range(from_ms, to_ms, FRAME_MS):
        await conn.send_media(SPEECH if speech[0] <= t < speech[1] else SILENCE)


async def _until(conn: Any, pred: Callable[[Any], bool]) -> list[Any]:
    out: list[Any] = []
    async with asyncio.timeout(GUARD_S):
        async for msg in conn:
            out.append(msg)
            if pred(msg):
                return out
    raise AssertionError(f"socket closed before the expected message; got {out!r}")


async def _rest(conn: Any) -> list[Any]:
    """Messages until the socket ends, however it ends."""
    out: list[Any] = []
    try:
        async with asyncio.timeout(GUARD_S):
            async for msg in conn:
                out.append(msg)
    except ConnectionClosed:
        pass  # an aborted socket ends with an error: what the test provokes
    return out


def _text(msg: Any) -> str:
    return str(msg.channel.alternatives[0].transcript)


def _is_final(msg: Any) -> bool:
    return getattr(msg, "type", None) == "Results" and bool(msg.is_final)


@live
@pytest.mark.parametrize("mode", ["close", "abort"])
async def test_drop_mid_utterance_then_resume_with_offset(port: int, mode: str) -> None:
    tag = f"CA-drop-{mode}"
    await _script(port, tag, TEXT, 400, 2400)
    async with _listen(port, tag) as first:
        await _stream(first, 0, 1400, speech=(400, 2400))
        got = await _until(first, lambda m: getattr(m, "type", None) == "Results" and _text(m))
        dropped = await _post(port, "/sim/listen/drop", {"tag": tag, "mode": mode})
        assert dropped.status_code == 200 and dropped.json()["dropped_sessions"] == 1
        got += await _rest(first)
        ws = first._websocket  # the SDK exposes no close code accessor
        if mode == "close":
            assert (ws.close_code, ws.close_reason) == (1011, "NET-0000")
        else:
            assert ws.close_code == 1006 and ws.close_rcvd is None  # no close frame: a reset
    assert not any(_is_final(m) for m in got)
    heard_before = [_text(m) for m in got if getattr(m, "type", None) == "Results"]
    assert heard_before and all(TEXT.startswith(t) and t != TEXT for t in heard_before)

    # A new socket fed only from the drop on (caller audio 1400 ms on) hears the words spoken
    # after 1400 ms, like real Deepgram: words 5-9 (media avoids this loss by replaying from the
    # end of the last final; see tests/e2e/test_conversation_timeline.py).
    async with _listen(port, tag, offset_ms=1400) as second:
        await _stream(second, 1400, 3400, speech=(400, 2400))
        msgs = await _until(second, lambda m: getattr(m, "type", None) == "UtteranceEnd")
        await second.send_close_stream()
        msgs += await _rest(second)
        assert second._websocket.close_code == 1000
    types = [getattr(m, "type", None) for m in msgs]
    assert types[0] == "SpeechStarted" and msgs[0].timestamp == 0.0
    finals = [m for m in msgs if _is_final(m)]
    assert [_text(m) for m in finals] == [HEARD_AFTER_1400] and finals[0].speech_final is True
    assert finals[0].start == 0.0 and finals[0].start + finals[0].duration == 1.0
    assert finals[0].channel.alternatives[0].words[-1].end == 1.0  # socket clock: 2400 - 1400
    interims = [_text(m) for m in msgs if types and not _is_final(m) and m.type == "Results"]
    assert interims and all(HEARD_AFTER_1400.startswith(t) for t in interims)
    assert msgs[types.index("UtteranceEnd")].last_word_end == 1.0
    assert types[-1] == "Metadata" and msgs[-1].duration == 2.0
    sessions = await _sessions(port, tag)
    assert [(s["dropped"], s["audio_offset_ms"], s["closed"]) for s in sessions] == [
        (mode, 0, True),
        (None, 1400, True),
    ]
    assert sessions[0]["bytes"] == 1400 * 8 and sessions[1]["bytes"] == 2000 * 8


@live
async def test_offset_skips_utterances_that_ended_before_it(port: int) -> None:
    tag = "CA-drop-skip"
    await _script(port, tag, "hello there", 200, 800)
    await _script(port, tag, "book me in please", 1600, 2400)
    async with _listen(port, tag, offset_ms=1000) as conn:
        await _stream(conn, 1000, 3600, speech=(1600, 2400))
        msgs = await _until(conn, lambda m: getattr(m, "type", None) == "UtteranceEnd")
    finals = [m for m in msgs if _is_final(m)]
    assert [_text(m) for m in finals] == ["book me in please"]
    assert finals[0].start == 0.6 and finals[0].start + finals[0].duration == 1.4
    speech_started = [m.timestamp for m in msgs if getattr(m, "type", None) == "SpeechStarted"]
    assert speech_started == [0.6]


@live
async def test_script_posted_after_reconnect_is_shifted(port: int) -> None:
    tag = "CA-drop-late"
    async with _listen(port, tag, offset_ms=5000) as conn:
        await _stream(conn, 5000, 5200, speech=(0, 0))
        await _script(port, tag, "too early", 1000, 2000)  # before the socket: ignored
        await _script(port, tag, "just in time", 5400, 6000)
        await _stream(conn, 5200, 6600, speech=(5400, 6000))
        msgs = await _until(conn, _is_final)
    assert [_text(m) for m in msgs if getattr(m, "type", None) == "Results"][-1] == "just in time"
    assert msgs[-1].start == 0.4 and [_text(m) for m in msgs if _is_final(m)] == ["just in time"]


@live
async def test_drop_control_errors(port: int) -> None:
    missing = await _post(port, "/sim/listen/drop", {"tag": "CA-nobody", "mode": "close"})
    assert missing.status_code == 404 and "CA-nobody" in missing.json()["error"]
    bad_mode = await _post(port, "/sim/listen/drop", {"tag": "CA-x", "mode": "explode"})
    assert bad_mode.status_code == 422
    async with httpx.AsyncClient() as http:
        not_json = await http.post(f"http://127.0.0.1:{port}/sim/listen/drop", content=b"{")
    assert not_json.status_code == 422


@live
async def test_drop_twice_finds_no_live_socket(port: int) -> None:
    tag = "CA-drop-twice"
    async with _listen(port, tag) as conn:
        await _stream(conn, 0, 100, speech=(0, 0))
        assert (await _post(port, "/sim/listen/drop", {"tag": tag, "mode": "close"})).is_success
        again = await _post(port, "/sim/listen/drop", {"tag": tag, "mode": "abort"})
        assert again.status_code == 404
        await _rest(conn)
        assert conn._websocket.close_code == 1011


@live
@pytest.mark.parametrize("extra", ["audio_offset_ms:-5", "audio_offset_ms:abc", "no-colon"])
async def test_bad_extra_is_400(port: int, extra: str) -> None:
    with pytest.raises(ApiError) as err:
        async with _listen(port, "CA-bad-extra", extra=extra):
            pass
    assert err.value.status_code == 400


def test_offset_helpers() -> None:
    extras = parse_extras(["audio_offset_ms:1400", "team:a:b"])
    assert extras == {"audio_offset_ms": "1400", "team": "a:b"}
    assert audio_offset_ms(extras) == 1400 and audio_offset_ms({}) == 0
    with pytest.raises(QueryError):
        audio_offset_ms({"audio_offset_ms": "1.5"})
    with pytest.raises(QueryError):
        parse_extras([":x"])
    assert socket_window(400, 2400, 1400) == (0, 1000)  # straddles: whole text, clamped start
    assert socket_window(1600, 2400, 1000) == (600, 1400)
    assert socket_window(200, 800, 800) is None  # ended before the socket's first byte
