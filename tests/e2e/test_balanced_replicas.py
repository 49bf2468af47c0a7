"""Issue 18 placement, through a real HAProxy checking every replica's `/readyz`:
calls spread over media replicas; a killed replica's call moves (after-stream) to another and
new calls avoid it; a replica that says "full" gets no new call until a call of its ends."""

from __future__ import annotations

import asyncio

import pytest

from shared.bus.streams import CallLog
from shared.contract import events as ev
from sim.twilio_call_model import TwilioCallerOptions
from sim.twilio_caller import CallResult, CallScript, place_call
from sim.twilio_webhook import new_sid
from tests.conftest import Platform
from tests.e2e.balanced_stack import Balanced, balanced_stack
from tests.e2e.media_pair import serving_replica, wait_for_log
from tests.e2e.test_call_end_to_end import LINES, caller_options
from tests.e2e.test_media_failover import assert_whole_conversation, call_ended, reply_to_line

pytestmark = pytest.mark.e2e


def through(platform: Platform, balanced: Balanced, n: int) -> list[TwilioCallerOptions]:
    """Caller options for `n` calls placed at the balancer's gateway address."""
    return [
        caller_options(platform, new_sid("CA")).model_copy(update={"gateway_url": balanced.gateway})
        for _ in range(n)
    ]


def start(options: list[TwilioCallerOptions]) -> list[asyncio.Task[CallResult]]:
    return [asyncio.create_task(place_call(o, CallScript(lines=list(LINES)))) for o in options]


async def served_by(
    log: CallLog, balanced: Balanced, options: list[TwilioCallerOptions]
) -> list[str]:
    """The media replica (process label) serving each call, once its greeting was heard."""
    labels = []
    for o in options:
        assert o.call_sid is not None
        entries = await wait_for_log(log, o.call_sid, ev.SegmentPlayed)
        labels.append(balanced.label_of(serving_replica(entries)))
    return labels


@pytest.mark.faults  # five replicas and five calls: ~1.5 min on the shared box (`make faults`)
async def test_kill_9_moves_the_call_and_new_calls_avoid_the_dead_replica(
    platform: Platform, call_log: CallLog, tmp_path_factory: pytest.TempPathFactory
) -> None:
    log, logs = call_log, tmp_path_factory.mktemp("balanced-kill")
    with balanced_stack(platform, logs, media=3, gateway=2) as balanced:
        first = through(platform, balanced, 3)
        calls = start(first)
        placed = await served_by(log, balanced, first)
        assert sorted(placed) == ["media", "media-1", "media-2"]  # leastconn: one each

        moving = first[0]
        assert moving.call_sid is not None
        await reply_to_line(log, moving.call_sid, 2)  # its reply written, not yet heard
        victim = placed[0]
        balanced.kill(victim)
        down = await asyncio.to_thread(balanced.wait_status, victim, "DOWN")
        assert down["check_status"] in ("L4CON", "L4TOUT", "L7TOUT", "SOCKERR"), down

        later = through(platform, balanced, 2)
        calls += start(later)
        placed_later = await served_by(log, balanced, later)
        results = await asyncio.gather(*calls)
        ended = [await wait_for_log(log, r.call_sid, ev.CallEnded) for r in results]
        resumed_on = balanced.label_of(serving_replica(ended[0]))

    assert victim not in placed_later
    assert_whole_conversation(results[0], ended[0], "Are you still there?")
    assert resumed_on != victim
    for result, entries in zip(results, ended, strict=True):
        assert result.error is None, result.error
        assert [line.text for line in result.lines] == LINES
        assert [e.reason for e in call_ended(entries)] == ["caller-hangup"]


async def test_a_full_replica_gets_no_new_call_until_it_has_room(
    platform: Platform, call_log: CallLog, tmp_path_factory: pytest.TempPathFactory
) -> None:
    log, logs = call_log, tmp_path_factory.mktemp("balanced-full")
    # "media" is full at one live call; "media-1" has no limit. Without the readiness check,
    # leastconn would give one of two concurrent new calls to "media" (1 live stream each).
    small = {"media": {"MEDIA_MAX_CALLS": "1"}, "media-1": {"MEDIA_MAX_CALLS": "0"}}
    with balanced_stack(platform, logs, media=2, replica_env=small) as balanced:
        first = through(platform, balanced, 2)
        calls = start(first)
        assert sorted(await served_by(log, balanced, first)) == ["media", "media-1"]
        await asyncio.to_thread(balanced.wait_status, "media", "DOWN")
        code, body = balanced.readyz("media")
        assert code == 503 and body["status"] == "full", body
        assert body["checks"] == {
        "redis": "ok", "postgres": "not used", "draining": "no", "calls": "1 of 1 (full)"
        }
        code, body = balanced.readyz("media-1")
        assert code == 200 and body["checks"]["calls"] == "1 of no limit"  # type: ignore[index]

        second = through(platform, balanced, 2)
        calls += start(second)
        assert await served_by(log, balanced, second) == ["media-1", "media-1"]
        results = await asyncio.gather(*calls)
        await asyncio.to_thread(balanced.wait_status, "media", "UP")  # room again

    for result in results:
        assert result.error is None, result.error
        assert [line.text for line in result.lines] == LINES
        assert result.resumes == 0
