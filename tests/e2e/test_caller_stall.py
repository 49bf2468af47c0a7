"""The simulated caller when the agent's audio comes late: a gap in it is a pause, not the
agent stopping. In CI the cluster barge-in call failed "agent stopped before 3000 ms of audio
had played" while media went on sending the answer: on a starved machine the TTS simulator's
audio came slower than real time for a moment, the caller's playout ran dry between two
chunks, and the caller took that first idle moment for the end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.contract import events as ev
from sim.twilio_call_turns import _Ears
from sim.twilio_caller import CallScript, SpeakOver, place_call
from tests.conftest import Platform
from tests.e2e.test_call_end_to_end import caller_options
from tests.e2e.test_conversation_timeline import PRICES, call_log_of

pytestmark = pytest.mark.e2e


def test_listening_restarts_after_a_stall() -> None:
    ears = _Ears(0.0)
    assert ears.poll(5.0) == 0.0 and ears.poll(90.0) == 0.0  # polls within STALL_MS
    assert ears.poll(2090.0) == 2090.0  # 2 s without a poll: nothing was heard meanwhile
    assert ears.poll(2095.0) == 2090.0


@pytest.fixture
def slow_tts(platform: Platform) -> Iterator[dict[str, Any]]:
    """The TTS simulator makes audio at 0.8 x real time for the calls of this test."""
    url = f"http://127.0.0.1:{platform.stack.ports.tts}/sim/speak/options"
    with httpx.Client(timeout=10) as client:
        before = client.post(url, json={}).json()
        assert client.post(url, json={"bogus": 1}).status_code == 400  # refused, named
        slow = client.post(url, json={"realtime_factor": 0.8})
        slow.raise_for_status()
        try:
            yield slow.json()
        finally:
            client.post(url, json={"realtime_factor": before["realtime_factor"]})


async def test_a_caller_waits_out_gaps_in_the_agents_audio(
    platform: Platform, slow_tts: dict[str, Any]
) -> None:
    assert slow_tts["realtime_factor"] == 0.8
    interruption = "Actually, can I book for tomorrow morning instead"
    script = CallScript(lines=[PRICES, SpeakOver(interruption, after_ms=3000), "Bye."])
    result = await place_call(caller_options(platform), script)
    assert result.error is None, result.error  # "agent stopped" at the first gap, before
    log = await call_log_of(platform, result.call_sid)
    [barge] = [e for e in log if isinstance(e, ev.BargeIn)]
    assert barge.turn_id == 1 and result.clears == 1
