"""Every call the gateway accepted ends in the record with `call.ended` and a reason, however it
ends (DESIGN §9): no stream ever, a refused token, Twilio's `completed` before any stream; and a
finished call is never resumed (no zombie stream)."""

from __future__ import annotations

import pytest

from shared.bus.streams import CallLog
from shared.contract import events as ev
from shared.contract import stream_token
from sim.twilio_webhook import inbound_call_params, new_sid, post_voice_webhook
from tests.conftest import Platform
from tests.e2e.media_pair import wait_for_log
from tests.e2e.test_call_cost import post_status_callback
from tests.e2e.test_call_end_to_end import run_scripted_call, wait_for_record
from tests.e2e.test_media_faults import closed_with, open_stream, start_call

pytestmark = pytest.mark.e2e


async def ends_of(platform: Platform, call_sid: str) -> list[ev.CallEnded]:
    redis = platform.infra.connect()
    try:
        entries = await wait_for_log(CallLog(redis, 16), call_sid, ev.CallEnded, timeout_s=40)
    finally:
        await redis.aclose()
    return [e for _, e in entries if isinstance(e, ev.CallEnded)]


async def post_after_stream(platform: Platform, call_sid: str) -> str:
    params = inbound_call_params(
        call_sid=call_sid,
        account_sid=new_sid("AC"),
        from_number="+447700900123",
        to_number=platform.tenant_number,
        call_status="in-progress",
    )
    hook = await post_voice_webhook(
        platform.gateway + "/twilio/after-stream", platform.auth_token, params
    )
    assert hook.status_code == 200, hook.error
    return hook.twiml


async def test_a_call_whose_stream_never_starts_ends_no_stream(platform: Platform) -> None:
    call_sid, _ = await start_call(platform)  # Twilio got the TwiML; the caller hung up
    assert [e.reason for e in await ends_of(platform, call_sid)] == ["no-stream"]  # reaper
    record = await wait_for_record(platform.infra.database_url, call_sid)
    assert record.end_reason == "no-stream"


async def test_a_refused_token_ends_the_call_at_after_stream(platform: Platform) -> None:
    call_sid, _ = await start_call(platform)
    session = await open_stream(platform, call_sid)
    await session.send_connected()
    await session.send_start({"token": "123.deadbeef"})
    assert (await closed_with(session))[0] == 1008
    twiml = await post_after_stream(platform, call_sid)
    assert "<Hangup" in twiml
    assert "<Hangup" in await post_after_stream(platform, call_sid)  # Twilio retried
    assert [e.reason for e in await ends_of(platform, call_sid)] == ["no-stream"]


async def test_completed_before_any_stream_ends_the_call_once(platform: Platform) -> None:
    call_sid, _ = await start_call(platform)
    assert await post_status_callback(platform, call_sid, 3) == 204
    assert await post_status_callback(platform, call_sid, 3) == 204  # Twilio retried
    assert [e.reason for e in await ends_of(platform, call_sid)] == ["no-stream"]


async def test_a_finished_call_is_never_resumed(platform: Platform) -> None:
    result, _ = await run_scripted_call(platform)
    assert "<Hangup" in await post_after_stream(platform, result.call_sid)
    # Even with a valid token, media refuses a stream for a call that ended.
    token = stream_token.issue(platform.env["STREAM_TOKEN_SECRET"], result.call_sid, 60)
    session = await open_stream(platform, result.call_sid)
    await session.send_connected()
    await session.send_start({"token": token})
    assert await closed_with(session) == (1008, "call already ended")
    assert [e.reason for e in await ends_of(platform, result.call_sid)] == ["caller-hangup"]
