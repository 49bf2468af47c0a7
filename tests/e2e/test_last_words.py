"""A caller who hangs up right after speaking: the words STT was still transcribing are in the
record (media asks STT for its finals at hang-up, `STT_DRAIN_S`), as a last caller line that
nobody answers."""

from __future__ import annotations

import pytest

from sim.twilio_caller import CallScript, place_call
from tests.conftest import Platform
from tests.e2e.test_call_end_to_end import caller_options, wait_for_record

pytestmark = pytest.mark.e2e

PRICES = "Hi, how much is a haircut?"
LAST = "Actually I will call you back tomorrow."


async def test_words_said_just_before_hanging_up_are_recorded(platform: Platform) -> None:
    script = CallScript(lines=[PRICES, LAST], wait_for_last_answer=False)
    result = await place_call(caller_options(platform), script)
    assert result.error is None, result.error
    assert result.hangup_by == "caller"
    record = await wait_for_record(platform.infra.database_url, result.call_sid)
    assert record.end_reason == "caller-hangup"
    assert [line.text for line in record.lines if line.role == "caller"] == [PRICES, LAST]
    agent = [line.text for line in record.lines if line.role == "agent"]
    assert any("£25" in text for text in agent)  # the first line was answered; the last is not
    assert record.lines[-1].role == "caller" and record.lines[-1].text == LAST
