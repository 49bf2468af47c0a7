"""Hostile Media Streams sockets next to a normal call: each closes with its own code and reason
(never a 1006 without one), the normal call completes with its full transcript in Postgres,
and 45 KB frames pin no memory in media."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from services.media.twilio import protocol as tw
from shared.bus.streams import CallLog, connect
from sim.twilio_media import MediaStreamSession, silence_frame
from tests.conftest import Platform
from tests.e2e.test_call_end_to_end import LINES, run_scripted_call
from tests.e2e.test_media_faults import closed_with, open_stream, start_call, wait_for_call_ended

pytestmark = pytest.mark.e2e

FRAME_45KB = base64.b64encode(b"\x7f" * 33_000).decode()  # ~45 KB of JSON
FORMAT = "unsupported mediaFormat: need audio/x-mulaw, 8000 Hz, 1 channel"
Attack = Callable[[MediaStreamSession], Awaitable[None]]


def start_frame(session: MediaStreamSession, **start: object) -> str:
    """A `start` for the session's call, with fields of `start` replaced (raw JSON text)."""
    body = {
        "accountSid": session.account_sid,
        "streamSid": session.stream_sid,
        "callSid": session.call_sid,
        "tracks": ["inbound"],
        "customParameters": {},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    body.update(start)
    return json.dumps({"event": "start", "sequenceNumber": "1", "start": body})


def media(payload: str) -> dict[str, object]:
    return {"event": "media", "media": {"chunk": "2", "timestamp": "20", "payload": payload}}


async def send_deep_parameters(session: MediaStreamSession) -> None:
    deep = '{"k": ' * 1000 + '"x"' + "}" * 1000
    frame = start_frame(session, customParameters="@")
    await session.send_raw(frame.replace('"@"', '{"token": ' + deep + "}"))


async def send_many_parameters(session: MediaStreamSession) -> None:
    params = {f"p{i}": "v" * 100 for i in range(40)}
    await session.send_raw(start_frame(session, customParameters=params))


async def send_bad_format(session: MediaStreamSession) -> None:
    fmt = {"encoding": "audio/l16", "sampleRate": 16000, "channels": 2}
    await session.send_raw(start_frame(session, mediaFormat=fmt))


async def send_bad_call_sid(session: MediaStreamSession) -> None:
    await session.send_raw(start_frame(session, callSid="CA../../etc/passwd"))


async def send_nothing(session: MediaStreamSession) -> None:
    """Connected, then silence on the socket: never a `start`."""


async def send_media_first(session: MediaStreamSession) -> None:
    await session.send_json(media(base64.b64encode(silence_frame()).decode()))


BEFORE_START: dict[str, tuple[Attack, int, str]] = {
    "deep customParameters": (
        send_deep_parameters,
        1008,
        "customParameters values must be strings (no nesting)",
    ),
    "40 customParameters": (send_many_parameters, 1008, "more than 16 customParameters"),
    "bad mediaFormat": (send_bad_format, 1008, FORMAT),
    "bad CallSid": (send_bad_call_sid, 1008, "start without a valid callSid (CA + 32 hex)"),
    "no start": (send_nothing, 1008, "no start within 5 s"),
    "media before start": (send_media_first, 1008, "media before start"),
}
AFTER_START: dict[str, tuple[str | bytes | dict[str, object], int, str]] = {
    "payload of 9 frames": (
        media(base64.b64encode(silence_frame() * 9).decode()),
        tw.CLOSE_TOO_BIG,
        "media payload too large",
    ),
    "payload of 100 bytes": (
        media(base64.b64encode(b"\xff" * 100).decode()),
        tw.CLOSE_INVALID_DATA,
        "media payload of 100 bytes is not whole 160-byte frames",
    ),
    "bad base64": (media("***"), tw.CLOSE_INVALID_DATA, "media payload is not valid base64"),
    "binary frame": (
        b"\x00\x01",
        tw.CLOSE_UNSUPPORTED,
        "binary frames are not part of the Media Streams protocol",
    ),
    "bad DTMF": (
        {"event": "dtmf", "dtmf": {"digit": "0; DROP TABLE"}},
        1008,
        "bad DTMF digit (one of 0-9 * # A-D)",
    ),
    "45 KB frame": (json.dumps(media(FRAME_45KB)), 1009, ""),  # reason: websockets' own
}


async def before_start(platform: Platform, kind: str) -> tuple[int | None, str | None]:
    attack, _, _ = BEFORE_START[kind]
    call_sid, _ = await start_call(platform)
    session = await open_stream(platform, call_sid)
    await session.send_connected()
    await attack(session)
    return await closed_with(session)


async def after_start(platform: Platform, kind: str) -> tuple[str, int | None, str | None]:
    """Sent while the agent speaks its greeting."""
    frame, _, _ = AFTER_START[kind]
    call_sid, token = await start_call(platform)
    session = await open_stream(platform, call_sid)
    await session.send_connected()
    await session.send_start({"token": token})
    await session.send_media_frame(silence_frame())
    assert await session.recv(timeout_s=20) is not None  # greeting audio: the agent speaks
    if isinstance(frame, dict):
        await session.send_json(frame)
    else:
        await session.send_raw(frame)
    code, reason = await closed_with(session)
    return call_sid, code, reason


async def test_hostile_sockets_close_with_a_reason_and_spare_a_normal_call(
    platform: Platform,
) -> None:
    good = asyncio.create_task(run_scripted_call(platform))
    early, late = await asyncio.gather(
        asyncio.gather(*(before_start(platform, kind) for kind in BEFORE_START)),
        asyncio.gather(*(after_start(platform, kind) for kind in AFTER_START)),
    )
    result, record = await good

    for kind, got in zip(BEFORE_START, early, strict=True):
        assert got == BEFORE_START[kind][1:], kind
    for kind, (_, code, reason) in zip(AFTER_START, late, strict=True):
        expected_code, expected_reason = AFTER_START[kind][1:]
        assert code == expected_code, kind
        assert reason == expected_reason if expected_reason else reason, kind
    assert [line.text for line in record.lines if line.role == "caller"] == LINES
    assert not result.error and result.close_code in (None, 1000)

    redis = connect(platform.infra.redis_url)
    try:
        log = CallLog(redis, 16)
        for kind, (call_sid, _, _) in zip(AFTER_START, late, strict=True):
            assert len(await wait_for_call_ended(log, call_sid)) == 1, kind
    finally:
        await redis.aclose()


def rss_kib(pid: int) -> int:
    """Resident memory of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


async def test_45kb_frames_pin_no_memory(platform: Platform) -> None:
    """50 sockets each sending a 45 KB frame: each is closed 1009, and media's
    resident memory does not grow by more than a few MiB (it was ~130 MiB per socket)."""
    pid = platform.stack.procs["media"].pid
    before = rss_kib(pid)

    async def flood() -> tuple[int | None, str | None]:
        call_sid, token = await start_call(platform)
        session = await open_stream(platform, call_sid)
        await session.send_connected()
        await session.send_start({"token": token})
        await session.send_media_frame(silence_frame())
        # One frame: media closes at the first (frames sent after it is closed would only make
        # the peer's kernel reset the connection before the close frame is read).
        await session.send_raw(json.dumps(media(FRAME_45KB)))
        return await closed_with(session)

    closes = await asyncio.gather(*(flood() for _ in range(50)))
    after = rss_kib(pid)
    print(
        f"media RSS before {before / 1024:.1f} MiB, after 50 x 45 KB sockets {after / 1024:.1f} MiB"
    )
    assert all(code == 1009 for code, _ in closes), closes
    assert after - before < 64 * 1024, (before, after)
