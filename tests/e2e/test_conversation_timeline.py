"""Scripted timelines through the real platform: barge-in, backchannel, silence, keypress,
end of call and hand-over, STT drop. The caller simulator is the only thing scripted."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from shared.bus.streams import CallLog
from shared.contract import events as ev
from sim.twilio_caller import CallResult, CallScript, Dtmf, Silence, SpeakOver, place_call
from tests.conftest import Platform
from tests.e2e.test_call_end_to_end import caller_options, wait_for_record
from tests.spoken_text import segment_texts

pytestmark = pytest.mark.e2e

PRICES = "Hi, how much is a haircut?"
PRICE_ANSWER = [
    "A men's haircut is £25 and takes 30 minutes.",
    "A beard trim is £15.",
    "Would you like to book?",
]


async def call_log_of(platform: Platform, call_sid: str) -> list[ev.Event]:
    redis = platform.infra.connect()
    try:
        return [e for _, e in await CallLog(redis, 16).entries(call_sid)]
    finally:
        await redis.aclose()


async def llm_requests(platform: Platform) -> list[dict[str, Any]]:
    port = platform.env["OPENAI_BASE_URL"].rsplit(":", 1)[1].split("/")[0]
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/sim/requests")
    body: Any = response.json()
    return list(body["requests"] if isinstance(body, dict) else body)


async def run(platform: Platform, script: CallScript) -> CallResult:
    result = await place_call(caller_options(platform), script)
    if result.error is not None:
        log = await call_log_of(platform, result.call_sid)
        trail = "\n".join(
            f"{e.type} {getattr(e, 'turn_id', '')} {getattr(e, 'seq', '')} "
            f"{getattr(e, 'text', '') or getattr(e, 'mark', '') or getattr(e, 'message', '')}"
            for e in log
            if e.type not in ("transcript.interim", "latency.mark")
        )
        raise AssertionError(f"{result.error}\n{trail}")
    return result


async def test_barge_in_clears_and_history_holds_only_what_was_heard(platform: Platform) -> None:
    interruption = "Actually, can I book for tomorrow morning instead"
    result = await run(
        platform,
        CallScript(
            lines=[
                PRICES,
                SpeakOver(interruption, after_ms=3000),
                "Great, thanks, bye.",
            ]
        ),
    )
    assert result.clears == 1
    log = await call_log_of(platform, result.call_sid)
    [barge] = [e for e in log if isinstance(e, ev.BargeIn)]
    assert barge.turn_id == 1 and barge.cleared_marks
    # What media says was heard is exactly what the caller's phone played before the clear.
    played = [s.mark for s in result.agent_segments if s.played and s.mark]
    heard_marks = [m for m in played if m.startswith("t1-")]
    texts = segment_texts(log, 1)
    expected_heard = " ".join(texts[int(m.split("-s")[1])] for m in heard_marks)
    assert barge.heard_text == expected_heard
    assert "Would you like to book?" not in barge.heard_text
    assert all(m not in played for m in barge.cleared_marks)
    # The brain's next request carries only the heard part of the interrupted answer.
    requests = [
        r for r in await llm_requests(platform) if r["messages"][-1].get("content") == interruption
    ]
    assert requests, "the interruption was never sent to the LLM"
    assistant = [m for m in requests[-1]["messages"] if m["role"] == "assistant"]
    assert assistant[-1]["content"] == expected_heard or (
        not expected_heard and all(texts[0] not in (m["content"] or "") for m in assistant)
    )
    # ... and the agent answered the interruption after the clear.
    turns = [e for e in log if isinstance(e, ev.TurnRequested)]
    assert [t.text for t in turns][:2] == [PRICES, interruption]
    assert any(isinstance(e, ev.SegmentPlayed) and e.turn_id == 2 and not e.cleared for e in log)


async def test_silence_gets_a_reprompt_then_a_goodbye_and_hangup(platform: Platform) -> None:
    script = CallScript(lines=[PRICES, Silence(60)], hangup_after_last=False)
    result = await run(platform, script)
    assert result.hangup_by == "server"
    record = await wait_for_record(platform.infra.database_url, result.call_sid)
    agent = [line.text for line in record.lines if line.role == "agent"]
    s = platform.env
    assert agent[-2:] == [
        "Are you still there?",
        "I haven't heard anything, so I'll hang up now. Goodbye!",
    ], (agent, s)
    assert record.end_reason == "agent-ended"
    assert result.after_stream_twiml is not None and "<Hangup" in result.after_stream_twiml


async def test_dtmf_zero_transfers_to_a_person(platform: Platform) -> None:
    script = CallScript(lines=[Dtmf("0")], hangup_after_last=False)
    result = await run(platform, script)
    assert result.hangup_by == "server"
    twiml = result.after_stream_twiml or ""
    assert "<Dial" in twiml and "+441632960099" in twiml and 'callerId="+447700900123"' in twiml
    log = await call_log_of(platform, result.call_sid)
    [intent] = [e for e in log if isinstance(e, ev.CallIntent)]
    assert intent.kind == "transfer" and intent.target == "+441632960099"
    said = [e for e in log if isinstance(e, ev.SegmentPlayed) and e.turn_id == intent.turn_id]
    assert said and not said[0].cleared  # the hand-over sentence was heard before closing


async def test_asking_for_a_person_transfers_through_the_tool(platform: Platform) -> None:
    script = CallScript(lines=["Can I speak to a real person please"], hangup_after_last=False)
    result = await run(platform, script)
    assert "<Dial" in (result.after_stream_twiml or "")
    log = await call_log_of(platform, result.call_sid)
    assert [e.name for e in log if isinstance(e, ev.ToolRequested)] == ["transfer_to_human"]


async def test_end_call_hangs_up_after_the_goodbye_was_played(platform: Platform) -> None:
    script = CallScript(lines=[PRICES, "No, that's all for today"], hangup_after_last=False)
    result = await run(platform, script)
    assert result.hangup_by == "server"
    assert "<Hangup" in (result.after_stream_twiml or "")
    log = await call_log_of(platform, result.call_sid)
    [intent] = [e for e in log if isinstance(e, ev.CallIntent)]
    assert intent.kind == "end"
    goodbye = [e for e in log if isinstance(e, ev.AgentText) and e.turn_id == intent.turn_id]
    said = " ".join(e.text for e in goodbye)
    assert said == "Thanks for calling Dave's Barbershop. Goodbye!"
    played = {(e.turn_id, e.seq) for e in log if isinstance(e, ev.SegmentPlayed) and not e.cleared}
    assert (goodbye[-1].turn_id, goodbye[-1].seq) in played
    ended = [e for e in log if isinstance(e, ev.CallEnded)]
    assert ended and ended[0].reason == "agent-ended"


async def test_stt_drop_mid_utterance_loses_no_caller_words(platform: Platform) -> None:
    line = "I would like to book a haircut and a beard trim for Saturday morning please"
    options = caller_options(platform)
    call = asyncio.create_task(place_call(options, CallScript(lines=[line, "Great, thanks, bye."])))
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while True:  # wait until STT has heard 800 ms of the (~4.5 s) line, then drop it
            sessions = (await client.get(f"{platform.stt_control}/sim/listen/sessions")).json()
            mine = [s for s in sessions if options.call_sid in s.get("tags", [s.get("tag")])]
            log = await call_log_of(platform, options.call_sid or "")
            onsets = [e.audio_ms for e in log if isinstance(e, ev.SpeechStarted)]
            if mine and onsets and mine[-1]["audio_ms"] >= onsets[0] + 800:
                break
            assert time.monotonic() < deadline, "the caller never got into the line"
            await asyncio.sleep(0.05)
        drop = await client.post(
            f"{platform.stt_control}/sim/listen/drop",
            json={"tag": options.call_sid, "mode": "abort"},
        )
        assert drop.status_code == 200, drop.text
    result = await call
    assert result.error is None, result.error
    log = await call_log_of(platform, result.call_sid)
    assert next(e.text for e in log if isinstance(e, ev.TurnRequested)) == line
    assert any(isinstance(e, ev.ProviderError) and "reconnect" in e.message for e in log)
