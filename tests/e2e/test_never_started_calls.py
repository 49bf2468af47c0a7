"""2,000 inbound calls whose Media Stream never connects, then a normal call (issue 13): the
gateway answers each signed webhook with its <Connect><Stream> TwiML, no stream ever comes, the
recorder follows every one of them (more than its 1,000 slots) and its reaper ends each with
`call.ended` reason `no-stream`; the normal call behind them is recorded. A platform of its own
(a private Redis and database): 2,000 abandoned calls are nobody else's business. Bounds are
the test platform's (`NO_STREAM_TIMEOUT_S=4`, `REAPER_POLL_S=1`), the recorder's 1,000 slots
the default; the figures are printed."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from shared.bus.streams import CallLog, connect
from shared.contract import events as ev
from shared.db.engine import make_engine, make_sessions
from shared.db.models import Call
from sim.twilio_caller import CallScript, place_call
from sim.twilio_webhook import (
    WebhookResult,
    http_client,
    inbound_call_params,
    new_sid,
    post_voice_webhook,
)
from tests.conditions import until
from tests.conftest import Infra, Platform, migrated_database, running_platform, server_dir
from tests.e2e.test_call_end_to_end import LINES, caller_options, wait_for_record
from tests.faults.redis_server import OwnRedis
from tests.otlp_receiver import RunningReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.faults]
"""`make faults`: 2,000 signed webhooks took 77 s at load average 7-11 (over `make test`'s
~60 s budget); the whole test 200 s."""

ABANDONED = 2000
POSTING = 16
"""Webhooks in flight at once (Twilio would send them from many hosts)."""
LIMIT_S = 600.0


@pytest.fixture(scope="module")
def lone_platform(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    directory = server_dir("frontdesk-redis-")
    redis_server = OwnRedis(directory)
    receiver = RunningReceiver()
    try:
        redis_server.start()
        with migrated_database(infra.database_url) as database_url:
            private = Infra(redis_url=redis_server.url, database_url=database_url)
            log_dir = tmp_path_factory.mktemp("never-started-logs")
            with running_platform(private, receiver, log_dir) as running:
                yield running
    finally:
        receiver.stop()
        redis_server.stop()
        shutil.rmtree(directory, ignore_errors=True)


async def post_webhooks(platform: Platform, sids: list[str]) -> list[WebhookResult]:
    """Twilio's signed voice webhook for each CallSid, `POSTING` at a time."""
    gate = asyncio.Semaphore(POSTING)
    account = new_sid("AC")
    async with http_client(30) as client:

        async def post(sid: str) -> WebhookResult:
            params = inbound_call_params(
                call_sid=sid,
                account_sid=account,
                from_number="+447700900555",
                to_number=platform.tenant_number,
            )
            async with gate:
                return await post_voice_webhook(
                    platform.gateway + "/twilio/voice", platform.auth_token, params, client=client
                )

        return list(await asyncio.gather(*(post(sid) for sid in sids)))


async def end_reasons(database_url: str, sids: list[str]) -> dict[str | None, int]:
    engine = make_engine(database_url)
    try:
        async with make_sessions(engine)() as session:
            rows = await session.execute(
                select(Call.end_reason, func.count())
                .where(Call.call_sid.in_(sids), Call.status == "completed")
                .group_by(Call.end_reason)
            )
            return {reason: int(n) for reason, n in rows.all()}
    finally:
        await engine.dispose()


async def test_2000_calls_that_never_stream_end_and_a_normal_call_is_recorded(
    lone_platform: Platform,
) -> None:
    platform = lone_platform
    database_url = platform.infra.database_url
    abandoned = [new_sid("CA") for _ in range(ABANDONED)]

    posting = time.monotonic()
    hooks = await post_webhooks(platform, abandoned)
    posted = time.monotonic()
    refused = [(h.params["CallSid"], h.error) for h in hooks if h.error is not None]
    assert not refused, refused[:5]
    assert all(h.parsed is not None and h.parsed.stream is not None for h in hooks)
    print(f"\nFIGURE {ABANDONED} signed voice webhooks answered with <Connect><Stream>: "
          f"{posted - posting:.1f} s ({ABANDONED / (posted - posting):.0f}/s, {POSTING} at once)")

    # then a normal call, placed behind every abandoned one
    result = await place_call(caller_options(platform), CallScript(lines=list(LINES)))
    assert result.error is None, result.error
    hung_up = time.monotonic()
    record = await wait_for_record(database_url, result.call_sid, LIMIT_S)
    print(f"FIGURE the normal call recorded {time.monotonic() - hung_up:.1f} s after its hangup "
          f"(it hung up {hung_up - posted:.1f} s after the last abandoned call's webhook)")
    assert record.end_reason == "caller-hangup"
    assert [line.text for line in record.lines if line.role == "caller"] == LINES

    async def all_ended() -> bool:
        return sum((await end_reasons(database_url, abandoned)).values()) == ABANDONED

    await until(all_ended, f"all {ABANDONED} abandoned calls recorded as ended", LIMIT_S)
    print(f"FIGURE all {ABANDONED} never-started calls ended and recorded "
          f"{time.monotonic() - posted:.1f} s after the last webhook "
          f"(NO_STREAM_TIMEOUT_S={platform.env['NO_STREAM_TIMEOUT_S']}, "
          f"REAPER_POLL_S={platform.env['REAPER_POLL_S']})")
    assert await end_reasons(database_url, abandoned) == {"no-stream": ABANDONED}

    redis = connect(platform.infra.redis_url)
    log = CallLog(redis, 16)
    try:
        for sid in abandoned:  # the reaper's call.ended is in each log, once
            entries = await log.entries(sid)
            ended = [e.reason for _, e in entries if isinstance(e, ev.CallEnded)]
            assert ended == ["no-stream"], (sid, ended)
            assert not any(isinstance(e, ev.StreamStarted) for _, e in entries), sid
    finally:
        await redis.aclose()
