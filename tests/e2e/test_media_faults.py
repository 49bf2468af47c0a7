"""Bad input on the Media Streams socket: one socket closes with a reason, others carry on."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest
from websockets.exceptions import InvalidStatus

from shared.bus.streams import CallLog, connect
from shared.contract import events as ev
from sim.twilio_media import MediaStreamSession, open_media_stream, silence_frame
from sim.twilio_webhook import inbound_call_params, new_sid, post_voice_webhook
from tests.conftest import Platform
from tests.e2e.test_call_end_to_end import LINES, run_scripted_call

pytestmark = pytest.mark.e2e


async def start_call(platform: Platform) -> tuple[str, str]:
    """Place the webhook like Twilio does; returns (CallSid, stream token)."""
    call_sid = new_sid("CA")
    params = inbound_call_params(
        call_sid=call_sid,
        account_sid=new_sid("AC"),
        from_number="+447700900123",
        to_number=platform.tenant_number,
    )
    result = await post_voice_webhook(
        platform.gateway + "/twilio/voice", platform.auth_token, params
    )
    assert result.status_code == 200, result.error
    return call_sid, result.custom_parameters["token"]


async def open_stream(platform: Platform, call_sid: str) -> MediaStreamSession:
    return await open_media_stream(
        platform.media_ws, platform.auth_token, call_sid=call_sid, account_sid=new_sid("AC")
    )


async def closed_with(session: MediaStreamSession) -> tuple[int | None, str | None]:
    """Read until the server closes; returns (code, reason)."""
    while await session.recv(timeout_s=20) is not None:
        pass
    return session.close_code, session.close_reason


async def test_invalid_stream_token_closes_with_reason(platform: Platform) -> None:
    call_sid, _ = await start_call(platform)
    session = await open_stream(platform, call_sid)
    await session.send_connected()
    await session.send_start({"token": "123.deadbeef"})
    code, reason = await closed_with(session)
    assert code == 1008
    assert reason is not None and reason.startswith("invalid stream token")


async def test_token_of_another_call_is_rejected(platform: Platform) -> None:
    _, token_a = await start_call(platform)
    call_b, _ = await start_call(platform)
    session = await open_stream(platform, call_b)
    await session.send_connected()
    await session.send_start({"token": token_a})
    code, reason = await closed_with(session)
    assert code == 1008 and reason == "invalid stream token: stream token does not match this call"


async def test_upgrade_without_valid_signature_is_refused(platform: Platform) -> None:
    with pytest.raises(InvalidStatus) as err:
        await open_media_stream(
            platform.media_ws,
            platform.auth_token,
            call_sid=new_sid("CA"),
            account_sid=new_sid("AC"),
            signature="forged",
        )
    assert err.value.response.status_code == 403


MALFORMED: dict[str, object] = {
    "not json": "this is {not json",
    "binary": b"\x00\x01\x02",
    "bad base64": {"event": "media", "media": {"payload": "***", "chunk": "1", "timestamp": "0"}},
    "no event": {"hello": "world"},
}
REASONS = {
    "not json": (1007, "frame is not JSON"),
    "binary": (1003, "binary frames are not part of the Media Streams protocol"),
    "bad base64": (1007, "media payload is not valid base64"),
    "no event": (1008, "frame has no 'event'"),
}


async def malformed_call(platform: Platform, kind: str) -> tuple[str, int | None, str | None]:
    call_sid, token = await start_call(platform)
    session = await open_stream(platform, call_sid)
    await session.send_connected()
    await session.send_start({"token": token})
    await session.send_media_frame(silence_frame())
    frame = MALFORMED[kind]
    if isinstance(frame, dict):
        await session.send_json(frame)
    else:
        assert isinstance(frame, str | bytes)
        await session.send_raw(frame)
    code, reason = await closed_with(session)
    return call_sid, code, reason


async def test_malformed_frames_close_one_socket_and_spare_the_others(platform: Platform) -> None:
    good = asyncio.create_task(run_scripted_call(platform))
    bad = await asyncio.gather(*(malformed_call(platform, kind) for kind in MALFORMED))
    result, record = await good

    for kind, (_, code, reason) in zip(MALFORMED, bad, strict=True):
        assert (code, reason) == REASONS[kind], kind
    assert [line.text for line in record.lines if line.role == "caller"] == LINES
    assert not result.error and result.close_code in (None, 1000)

    redis = connect(platform.infra.redis_url)
    log = CallLog(redis, 16)
    try:
        for kind, (call_sid, _, _) in zip(MALFORMED, bad, strict=True):
            ended = await wait_for_call_ended(log, call_sid)
            assert len(ended) == 1 and ended[0].reason.startswith("protocol-error"), kind
    finally:
        await redis.aclose()


async def wait_for_call_ended(log: CallLog, call_sid: str) -> list[ev.CallEnded]:
    """Media writes call.ended as it tears the call down, just after the socket closed."""
    deadline = time.monotonic() + 15
    while True:
        ended = [e for _, e in await log.entries(call_sid) if isinstance(e, ev.CallEnded)]
        if ended or time.monotonic() > deadline:
            return ended
        await asyncio.sleep(0.05)


async def test_media_before_start_is_a_protocol_error(platform: Platform) -> None:
    call_sid, _ = await start_call(platform)
    session = await open_stream(platform, call_sid)
    await session.send_connected()
    payload = base64.b64encode(silence_frame()).decode()
    await session.send_json(
        {
            "event": "media",
            "sequenceNumber": "1",
            "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": payload},
        }
    )
    code, reason = await closed_with(session)
    assert (code, reason) == (1008, "media before start")
