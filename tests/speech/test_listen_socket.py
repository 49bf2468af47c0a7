"""The speech service's `/v1/listen` as media uses it: a spoken utterance in, its words and the
Deepgram message sequence out; and hostile frames closing only their own socket."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from services.media.caller.stt_deepgram import (
    DeepgramStt,
    SttEvent,
    SttSpeechStarted,
    SttTranscript,
    SttUtteranceEnd,
)
from shared.bus.waiting import within
from shared.runtime.settings import Settings
from tests.speech.conftest import SpeechServer, frames, silence, utterance

LISTEN = "model=nova-3&encoding=mulaw&sample_rate=8000&channels=1"


async def send_in_real_time(stt: DeepgramStt, audio: bytes) -> None:
    """20 ms frames on the audio clock, as Twilio and media send them (interims need time)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i, frame in enumerate(frames(audio)):
        await stt.send(frame)
        await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - loop.time()))


async def skipped_interims(server: SpeechServer) -> float:
    """The replica's speech_interims_skipped_total."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(server.url.replace("ws://", "http://") + "/metrics")).text
    (line,) = [x for x in text.splitlines() if x.startswith("speech_interims_skipped_total ")]
    return float(line.split()[1])


def words_of(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


async def test_media_stt_client_hears_the_utterance_in_deepgram_order(
    speech_server: SpeechServer,
) -> None:
    settings = Settings(deepgram_stt_url=speech_server.url, deepgram_api_key=speech_server.key)
    stt = DeepgramStt(settings, "CAspeech0001", keyterms=["table", "Friday"])
    await stt.open()
    events: list[SttEvent] = []

    async def collect() -> None:
        async for event in stt.events():
            events.append(event)
            if isinstance(event, SttUtteranceEnd):
                return

    skipped_before = await skipped_interims(speech_server)
    reader = asyncio.create_task(collect())
    await send_in_real_time(stt, silence(500) + utterance() + silence(1500))
    await within(reader, 60)
    await stt.close()

    assert isinstance(events[0], SttSpeechStarted), events
    assert 300 <= events[0].audio_ms <= 1200, events[0]
    transcripts = [e for e in events if isinstance(e, SttTranscript)]
    finals = [e for e in transcripts if e.is_final]
    assert len(finals) == 1, transcripts
    final = finals[0]
    assert final.speech_final, final
    heard = words_of(final.text)
    assert {"hello", "like", "table", "people", "friday"} <= heard, final.text
    assert heard & {"four", "4"}, final.text
    # interims come before their final, cover the same start and only grow
    assert transcripts[-1] is final
    interims = transcripts[:-1]
    # Interims are best effort (skipped, and counted, while the decode pool is busy): each
    # one due was either sent or counted as skipped.
    skipped = await skipped_interims(speech_server) - skipped_before
    assert len(interims) + skipped >= 1, "no interim was sent nor counted as skipped"
    assert all(not e.is_final and e.start_ms == final.start_ms for e in interims)
    assert [e.end_ms for e in interims] == sorted(e.end_ms for e in interims)
    assert isinstance(events[-1], SttUtteranceEnd), events[-1]
    assert events[-1].last_word_end_ms == final.end_ms
    audio_ms = (len(utterance()) + 500 * 8) // 8
    assert final.start_ms < 700 and audio_ms - 400 <= final.end_ms <= audio_ms + 600, final


async def _open(server: SpeechServer, query: str = LISTEN, key: str | None = None) -> Any:
    headers = {"Authorization": f"Token {key or server.key}"}
    return connect(f"{server.url}/v1/listen?{query}", additional_headers=headers)


async def _messages_until_close(ws: ClientConnection) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    try:
        while True:
            out.append(json.loads(await within(ws.recv(), 60)))
    except ConnectionClosed:
        return out


async def test_finalize_flushes_an_open_utterance_and_closestream_ends_with_metadata(
    speech_server: SpeechServer,
) -> None:
    half = utterance()[: len(utterance()) // 2]
    sent = silence(300) + half
    async with await _open(speech_server, LISTEN + "&interim_results=false&endpointing=300") as ws:
        for frame in frames(sent):
            await ws.send(frame)
        await ws.send(json.dumps({"type": "Finalize"}))
        await ws.send(json.dumps({"type": "KeepAlive"}))
        await ws.send(json.dumps({"type": "CloseStream"}))
        messages = await _messages_until_close(ws)
        assert ws.close_code == 1000
    kinds = [m["type"] for m in messages]
    assert kinds == ["Results", "Metadata"], messages
    result, meta = messages
    assert result["is_final"] and result["from_finalize"] and not result["speech_final"]
    assert {"hello", "like"} <= words_of(result["channel"]["alternatives"][0]["transcript"])
    assert meta["duration"] == pytest.approx(len(sent) / 8000, abs=0.001)
    assert meta["request_id"] == result["metadata"]["request_id"]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "DATA-0001: text frame is not JSON"),
        (json.dumps({"type": "Bogus"}), "DATA-0001: unknown control message type 'Bogus'"),
        (json.dumps([1, 2]), "DATA-0001: unknown control message type 'None'"),
    ],
)
async def test_a_malformed_text_frame_closes_that_socket_with_a_reason(
    speech_server: SpeechServer, frame: str, reason: str
) -> None:
    async with await _open(speech_server) as ws, await _open(speech_server) as other:
        await ws.send(silence(100))
        await ws.send(frame)
        await _messages_until_close(ws)
        assert (ws.close_code, ws.close_reason) == (1008, reason)
        await other.send(json.dumps({"type": "CloseStream"}))  # the other socket still works
        assert [m["type"] for m in await _messages_until_close(other)] == ["Metadata"]


async def test_audio_pushed_far_faster_than_real_time_closes_instead_of_queueing(
    speech_server: SpeechServer,
) -> None:
    talk = (utterance() + silence(500)) * 8  # 8 utterances, 43 s of audio, sent at once
    async with await _open(speech_server, LISTEN + "&vad_events=true&endpointing=300") as ws:
        for chunk in frames(talk, 8000):
            await ws.send(chunk)
        await _messages_until_close(ws)
        assert (ws.close_code, ws.close_reason) == (
            1008,
            "DATA-0002: audio arrives faster than it can be transcribed",
        )


async def test_an_oversized_frame_closes_with_1009(speech_server: SpeechServer) -> None:
    async with await _open(speech_server) as ws:
        await ws.send(b"\xff" * (speech_server.settings.speech_ws_max_bytes + 1))
        await _messages_until_close(ws)
        assert ws.close_code == 1009
        assert ws.close_reason == "audio frame over 65536 bytes"


async def test_a_silent_socket_closes_on_the_idle_timeout(speech_server: SpeechServer) -> None:
    async with await _open(speech_server) as ws:
        await _messages_until_close(ws)
        assert ws.close_code == 1011
        assert (ws.close_reason or "").startswith("NET-0001")


@pytest.mark.parametrize(
    ("query", "key", "status"),
    [
        (LISTEN, "wrong-key", 401),
        ("model=nova-3&encoding=linear16&sample_rate=16000", None, 400),
        (LISTEN + "&interim_results=True", None, 400),
        (LISTEN + "&endpointing=soon", None, 400),
    ],
)
async def test_bad_upgrades_are_refused_before_the_socket_opens(
    speech_server: SpeechServer, query: str, key: str | None, status: int
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with await _open(speech_server, query, key):
            pass
    response = refused.value.response
    assert response.status_code == status
    assert response.headers["dg-request-id"]
    assert json.loads(response.body)["err_msg"]


async def test_synthesis_on_the_speech_service_takes_the_same_key(
    speech_server: SpeechServer,
) -> None:
    http = speech_server.url.replace("ws://", "http://") + "/v1/speak"
    async with httpx.AsyncClient() as client:
        anonymous = await client.post(http, json={"text": "hello"})
        assert anonymous.status_code == 401
        assert anonymous.json()["err_code"] == "INVALID_AUTH"
        keyed = await client.post(
            http, content=b"not json", headers={"Authorization": f"Token {speech_server.key}"}
        )
        assert keyed.status_code == 400  # past the key: the synthesis handler read the body
    with pytest.raises(InvalidStatus) as refused:
        async with connect(speech_server.url + "/v1/speak?encoding=mulaw&sample_rate=8000"):
            pass
    assert refused.value.response.status_code == 401
