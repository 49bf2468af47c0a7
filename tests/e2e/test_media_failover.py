"""A media replica dies (kill -9) or drains (SIGTERM) mid-call: the caller simulator follows the
after-stream TwiML like Twilio, the call resumes on the other replica with its history, the
reply that was never heard is spoken, no spurious reprompt, and `call.ended` is written once."""

from __future__ import annotations

import asyncio

import pytest

from shared.bus.streams import CallLog
from shared.contract import events as ev
from sim.twilio_caller import CallResult, CallScript, place_call
from sim.twilio_webhook import new_sid
from tests.conftest import Platform
from tests.e2e.media_pair import MediaPair, media_pair, serving_replica, wait_for_log
from tests.e2e.test_call_end_to_end import LINES, caller_options, wait_for_record

pytestmark = pytest.mark.e2e
__all__ = ["media_pair"]  # the fixture


async def reply_to_line(log: CallLog, call_sid: str, line: int) -> list[tuple[str, ev.Event]]:
    """Wait until the brain wrote the first text of its reply to caller line `line` (1-based)."""

    def replied(entries: list[tuple[str, ev.Event]]) -> bool:
        turns = [e.turn_id for _, e in entries if isinstance(e, ev.TurnRequested)]
        if len(turns) < line:
            return False
        return any(isinstance(e, ev.AgentText) and e.turn_id == turns[line - 1] for _, e in entries)

    for _ in range(3000):  # 60 s at most
        entries = await log.entries(call_sid)
        if replied(entries):
            return entries
        await asyncio.sleep(0.02)
    raise AssertionError(f"no reply to line {line} of {call_sid}")


def call_ended(entries: list[tuple[str, ev.Event]]) -> list[ev.CallEnded]:
    return [e for _, e in entries if isinstance(e, ev.CallEnded)]


def assert_whole_conversation(
    result: CallResult, entries: list[tuple[str, ev.Event]], reprompt: str
) -> None:
    assert result.error is None, result.error
    assert result.resumes >= 1
    assert [line.text for line in result.lines] == LINES
    ended = call_ended(entries)
    assert [e.reason for e in ended] == ["caller-hangup"]  # once
    texts = [e.text for _, e in entries if isinstance(e, ev.AgentText)]
    assert reprompt not in texts  # the move caused no "Are you still there?"
    replicas = {e.replica for _, e in entries if isinstance(e, ev.StreamStarted)}
    assert len(replicas) == 2


async def test_kill_9_mid_reply_resumes_and_speaks_the_reply(
    platform: Platform, media_pair: MediaPair
) -> None:
    redis = platform.infra.connect()
    log = CallLog(redis, 16)
    try:
        opts = caller_options(platform).model_copy(update={"gateway_url": media_pair.gateway})
        assert opts.call_sid is not None
        call = asyncio.create_task(place_call(opts, CallScript(lines=list(LINES))))
        entries = await reply_to_line(log, opts.call_sid, 2)  # "where are you located?"
        victim = media_pair.label_of(serving_replica(entries))
        media_pair.kill(victim)  # the reply is written, its audio not heard yet
        result = await call
        record = await wait_for_record(platform.infra.database_url, result.call_sid)
        entries = await wait_for_log(log, result.call_sid, ev.CallEnded)
    finally:
        await redis.aclose()

    assert_whole_conversation(result, entries, "Are you still there?")
    agent = [line.text for line in record.lines if line.role == "agent"]
    assert any("123 High Street" in text for text in agent)  # heard after the move
    assert record.end_reason == "caller-hangup"


async def test_sigterm_drains_live_calls_to_the_other_replica(
    platform: Platform, media_pair: MediaPair
) -> None:
    redis = platform.infra.connect()
    log = CallLog(redis, 16)
    try:
        options = [
            caller_options(platform, new_sid("CA")).model_copy(
                update={"gateway_url": media_pair.gateway}
            )
            for _ in range(3)
        ]
        calls = [asyncio.create_task(place_call(o, CallScript(lines=list(LINES)))) for o in options]
        served: dict[str, str] = {}
        for o in options:
            assert o.call_sid is not None
            served[o.call_sid] = serving_replica(
                await wait_for_log(log, o.call_sid, ev.SegmentPlayed)  # greeting heard
            )
        busiest = max(set(served.values()), key=list(served.values()).count)
        victim = media_pair.label_of(busiest)
        media_pair.terminate(victim)
        results = await asyncio.gather(*calls)
        code = await asyncio.to_thread(media_pair.wait_exit, victim, 60)
        logs = [await wait_for_log(log, r.call_sid, ev.CallEnded) for r in results]
    finally:
        await redis.aclose()

    assert code in (0, -15)  # exited after draining (uvicorn re-raises SIGTERM)
    moved = [r for r in results if served[r.call_sid] == busiest]
    assert moved
    for result, entries in zip(results, logs, strict=True):
        assert result.error is None, result.error
        assert [line.text for line in result.lines] == LINES  # nobody was hung up on
        assert [e.reason for e in call_ended(entries)] == ["caller-hangup"]
    for result in moved:
        entries = logs[results.index(result)]
        assert_whole_conversation(result, entries, "Are you still there?")
        handovers = [e for _, e in entries if isinstance(e, ev.StreamEnded) and e.handover]
        assert len(handovers) == 1
