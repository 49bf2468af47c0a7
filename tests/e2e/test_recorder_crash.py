"""kill -9 the recorder in the middle of a call: a new replica finishes the record, no loss and
no duplicates."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest
from sqlalchemy import func, select

from shared.bus.streams import CallLog
from shared.db.engine import make_engine, make_sessions
from shared.db.models import Call, CallEvent, TranscriptLine
from sim.twilio_caller import CallScript, place_call
from tests.conftest import Platform
from tests.e2e.test_call_end_to_end import LINES, caller_options, wait_for_record

pytestmark = pytest.mark.e2e


async def test_recorder_killed_mid_call_loses_and_duplicates_nothing(platform: Platform) -> None:
    options = caller_options(platform)
    assert options.call_sid is not None
    call = asyncio.create_task(place_call(options, CallScript(lines=list(LINES))))
    engine = make_engine(platform.infra.database_url)
    sessions = make_sessions(engine)
    try:
        deadline = time.monotonic() + 30
        while True:  # wait until the recorder has stored part of the call
            async with sessions() as session:
                lines = await session.scalar(
                    select(func.count())
                    .select_from(TranscriptLine)
                    .where(TranscriptLine.call_sid == options.call_sid)
                )
            if lines:
                break
            assert time.monotonic() < deadline, "recorder never started on the call"
            await asyncio.sleep(0.05)

        platform.stack.kill("recorder")  # SIGKILL: no chance to ack or clean up
        platform.stack.spawn(
            "recorder",
            [sys.executable, "-m", "services.recorder"],
            platform.env | {"REPLICA_NAME": "recorder-replacement", "METRICS_PORT": "0"},
        )

        result = await call
        assert result.error is None, result.error
        record = await wait_for_record(platform.infra.database_url, options.call_sid, 60)

        redis = platform.infra.connect()
        try:
            log_ids = [
                entry_id for entry_id, _ in await CallLog(redis, 16).entries(options.call_sid)
            ]
        finally:
            await redis.aclose()
        async with sessions() as session:
            stored = (
                await session.scalars(
                    select(CallEvent.entry_id).where(CallEvent.call_sid == options.call_sid)
                )
            ).all()
            cursor = await session.scalar(
                select(Call.last_entry_id).where(Call.call_sid == options.call_sid)
            )
    finally:
        await engine.dispose()

    assert sorted(stored) == sorted(log_ids)  # every entry once: none lost, none duplicated
    assert cursor == log_ids[-1]
    assert [line.text for line in record.lines if line.role == "caller"] == LINES
    assert record.end_reason == "caller-hangup"
