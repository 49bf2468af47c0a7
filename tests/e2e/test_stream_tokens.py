"""Stream tokens work once and a call has one live stream; a crashed media replica's call still
resumes on another replica with the token the gateway's after-stream mints."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from frontdesk.supervisor import free_port, wait_http
from shared.bus.streams import CallLog, connect
from shared.contract import events as ev
from shared.contract import keys, stream_token
from sim.twilio_media import MediaStreamSession, open_media_stream, silence_frame
from sim.twilio_webhook import inbound_call_params, new_sid, post_voice_webhook, sign_request
from tests.conditions import until
from tests.conftest import Platform
from tests.e2e.test_media_faults import closed_with, open_stream, start_call, wait_for_call_ended

pytestmark = pytest.mark.e2e

GROUPS = 16


@pytest_asyncio.fixture
async def log(platform: Platform) -> AsyncIterator[CallLog]:
    redis = connect(platform.infra.redis_url)
    yield CallLog(redis, GROUPS)
    await redis.aclose()


async def wait_for_events(
    log: CallLog, call_sid: str, match: Callable[[ev.Event], bool], count: int = 1
) -> list[ev.Event]:
    """The call's events that `match`, once there are `count` of them (bounded wait)."""
    deadline = time.monotonic() + 20
    while True:
        found = [e for _, e in await log.entries(call_sid) if match(e)]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"{call_sid}: fewer than {count} matching events"
        await asyncio.sleep(0.05)


def stream_started(event: ev.Event) -> bool:
    return isinstance(event, ev.StreamStarted)


async def started_stream(platform: Platform, call_sid: str, token: str) -> MediaStreamSession:
    session = await open_stream(platform, call_sid)
    await session.send_connected()
    await session.send_start({"token": token})
    return session


async def hang_up(session: MediaStreamSession) -> tuple[int | None, str | None]:
    """Twilio's `stop`; returns how media closed the socket."""
    await session.send_media_frame(silence_frame())
    await session.send_stop()
    return await closed_with(session)


async def test_a_token_is_refused_while_its_call_is_live_and_after_it_ended(
    platform: Platform, log: CallLog
) -> None:
    call_sid, token = await start_call(platform)
    first = await started_stream(platform, call_sid, token)
    await wait_for_events(log, call_sid, stream_started)

    second = await started_stream(platform, call_sid, token)
    await second.send_dtmf("0")  # the attack of issue 12: DTMF 0 on a stolen token transfers
    assert await closed_with(second) == (1008, "stream token already used")

    assert await hang_up(first) == (1000, "stream stopped")
    ended = await wait_for_call_ended(log, call_sid)
    assert [e.reason for e in ended] == ["caller-hangup"]

    third = await started_stream(platform, call_sid, token)
    assert await closed_with(third) == (1008, "stream token already used")
    events = [e for _, e in await log.entries(call_sid)]
    assert [e for e in events if isinstance(e, ev.CallEnded)] == ended  # reason, duration kept
    assert sum(map(stream_started, events)) == 1
    assert not any(isinstance(e, ev.Dtmf | ev.CallIntent) for e in events)


@pytest.mark.parametrize("minted", ["before", "after"])
async def test_a_second_stream_for_a_live_call_is_refused_with_any_valid_token(
    platform: Platform, log: CallLog, minted: str
) -> None:
    """A token of this call that was never used (an older mint, or a newer one such as a
    replayed webhook would give) still cannot open a second stream while the first lives."""
    call_sid, token = await start_call(platform)
    secret = platform.env["STREAM_TOKEN_SECRET"]
    other = stream_token.issue(secret, call_sid, 120, now=time.time() - 1)
    first = await started_stream(platform, call_sid, token)
    await wait_for_events(log, call_sid, stream_started)
    if minted == "after":
        other = stream_token.issue(secret, call_sid, 120)

    second = await started_stream(platform, call_sid, other)
    assert await closed_with(second) == (1008, "another stream is live for this call")

    assert await hang_up(first) == (1000, "stream stopped")
    assert [e.reason for e in await wait_for_call_ended(log, call_sid)] == ["caller-hangup"]
    assert sum(map(stream_started, [e for _, e in await log.entries(call_sid)])) == 1


async def test_a_call_resumes_on_another_replica_after_its_replica_was_killed(
    platform: Platform, log: CallLog
) -> None:
    """kill -9 the replica serving a call: its live-stream marker stays behind, Twilio asks
    the after-stream URL, and the fresh token it gets opens the stream on another replica."""
    port = free_port()
    replica = f"media-doomed-{port}"
    env = platform.env | {"MEDIA_PORT": str(port), "REPLICA_NAME": replica}
    platform.stack.spawn(replica, [sys.executable, "-m", "services.media"], env)
    await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/healthz", platform.stack)

    call_sid, token = await start_call(platform)
    doomed = await open_media_stream(
        f"ws://127.0.0.1:{port}/twilio/stream",
        platform.auth_token,
        call_sid=call_sid,
        account_sid=new_sid("AC"),
        signature=sign_request(platform.auth_token, platform.media_ws),  # the public URL
    )
    await doomed.send_connected()
    await doomed.send_start({"token": token})
    first = await wait_for_events(log, call_sid, stream_started)
    assert isinstance(first[0], ev.StreamStarted) and first[0].replica == replica

    await asyncio.to_thread(platform.stack.kill, replica)
    assert await closed_with(doomed) == (1006, "")  # no close frame from a dead process
    assert await log.redis.exists(keys.live_stream(call_sid, GROUPS))  # left behind

    params = inbound_call_params(
        call_sid=call_sid,
        account_sid=new_sid("AC"),
        from_number="+447700900123",
        to_number=platform.tenant_number,
        call_status="in-progress",
    )
    after = await post_voice_webhook(
        platform.gateway + "/twilio/after-stream", platform.auth_token, params
    )
    fresh = after.custom_parameters.get("token", "")
    assert after.stream_url == platform.media_ws and fresh and fresh != token

    resumed = await started_stream(platform, call_sid, fresh)
    streams = await wait_for_events(log, call_sid, stream_started, count=2)
    assert isinstance(streams[1], ev.StreamStarted) and streams[1].replica != replica
    reused = await started_stream(platform, call_sid, token)
    assert await closed_with(reused) == (1008, "stream token already used")

    assert await hang_up(resumed) == (1000, "stream stopped")
    assert [e.reason for e in await wait_for_call_ended(log, call_sid)] == ["caller-hangup"]

    async def marker_gone() -> bool:  # released after the stream's last log entries
        return not await log.redis.exists(keys.live_stream(call_sid, GROUPS))

    await until(marker_gone, "the live-stream marker to be released", 10)
