"""A Deepgram Voice Agent call whose media replica drains (SIGTERM) mid-call: the call resumes
on the other replica with a new agent session that knows the conversation so far and does not
greet the caller again (services/media/voice_agents/resume.py)."""

from __future__ import annotations

import asyncio

import pytest

from shared.bus.streams import CallLog
from shared.contract import events as ev
from sim.twilio_caller import CallScript, place_call
from sim.twilio_webhook import new_sid
from tests.conftest import Platform
from tests.e2e.media_pair import MediaPair, media_pair, serving_replica, wait_for_log
from tests.e2e.test_call_end_to_end import wait_for_record
from tests.e2e.test_pipeline_deepgram_agent import (
    GREETING,
    agent_number,
    agent_sessions,
    lines_of,
    options,
    set_policy,
)

pytestmark = pytest.mark.e2e
__all__ = ["agent_number", "media_pair"]  # fixtures
LINES = ["Where are you located?", "Thanks, bye."]


async def test_a_moved_voice_agent_call_goes_on_without_a_second_greeting(
    platform: Platform, media_pair: MediaPair, agent_number: str
) -> None:
    call_sid = new_sid("CA")
    await set_policy(
        platform,
        call_sid,
        {
            "rules": [
                {"match": "where", "reply": "We're at 123 High Street."},
                {"match": r"\bbye\b", "reply": "Goodbye!"},
            ],
            "fallback": "Sorry, go on?",
        },
    )
    opts = options(platform, agent_number, call_sid).model_copy(
        update={"gateway_url": media_pair.gateway}
    )
    redis = platform.infra.connect()
    log = CallLog(redis, 16)
    try:
        call = asyncio.create_task(place_call(opts, CallScript(lines=list(LINES))))
        served = serving_replica(await wait_for_log(log, call_sid, ev.SegmentPlayed))
        victim = media_pair.label_of(served)
        media_pair.terminate(victim)  # drains: the call moves through after-stream
        result = await call
        await asyncio.to_thread(media_pair.wait_exit, victim, 60)
        entries = await wait_for_log(log, call_sid, ev.CallEnded)
    finally:
        await redis.aclose()
    assert result.error is None, result.error
    assert result.resumes >= 1
    assert [line.text for line in result.lines] == LINES  # nobody was hung up on
    sessions = await agent_sessions(platform, call_sid)
    assert len(sessions) == 2
    assert GREETING not in sessions[1]["agent_texts"]  # the new session did not greet again
    record = await wait_for_record(platform.infra.database_url, call_sid)
    assert lines_of(record, "agent").count(GREETING) == 1
    assert lines_of(record, "caller") == LINES
    assert "We're at 123 High Street." in lines_of(record, "agent")
    assert [e.reason for _, e in entries if isinstance(e, ev.CallEnded)] == ["caller-hangup"]
