"""The recorder against poison and lateness (real Redis, real Postgres): an entry that can never
be stored goes to `dead_letters` while the rest of the call is recorded, and `frontdesk
deadletters retry` stores it once the cause is fixed; a poison work item is dead-lettered and
acked; usage written after call.ended is stored and priced; calls that never end are ended by
the recorder (`recorder-timeout`) so they cannot starve a normal call of slots."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest_asyncio
from redis.asyncio import Redis
from sqlalchemy import func, select, text

from services.recorder.dead_letters.retry import retry
from services.recorder.dead_letters.work_items import dead_letter_sink
from services.recorder.follower import RecorderDeps, handle_work_item, record_call
from shared.bus.streams import CallLog
from shared.bus.work_queue import WorkQueue, run_workers
from shared.contract import events as ev
from shared.db.engine import make_engine, make_sessions
from shared.db.models import (
    Call,
    CallCost,
    CostLineItem,
    DeadLetterRow,
    DtmfPress,
    TranscriptLine,
    UsageRecord,
)
from shared.runtime.settings import Settings
from sim.twilio_webhook import new_sid
from tests.conditions import until
from tests.conftest import ROOT, Infra
from tests.integration.test_recorder_persistence import make_tenant, recorder

LIMIT_S = 120.0


async def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`frontdesk deadletters ARGS` in a subprocess (off the event loop)."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "frontdesk.cli", "deadletters", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=LIMIT_S,
    )


@pytest_asyncio.fixture
async def deps(private_infra: Infra, call_log: CallLog) -> AsyncIterator[RecorderDeps]:
    async with recorder(private_infra, call_log) as made:
        yield dataclasses.replace(made, late_grace_s=0.0, entry_attempts=2)


async def _append(call_log: CallLog, events: list[ev.Event]) -> list[str]:
    return [await call_log.append(e) for e in events]


async def test_poison_entry_is_dead_lettered_the_call_recorded_and_retry_stores_it(
    private_infra: Infra, deps: RecorderDeps, call_log: CallLog, redis: Redis
) -> None:
    sid = new_sid("CA")
    tenant = await make_tenant(deps.sessions)
    c = {"call_sid": sid, "tenant_id": tenant}
    t0 = time.time() - 30
    ids = await _append(
        call_log,
        [
            ev.CallStarted(**c, at=t0, from_number="+447700900123", to_number="+441632960001"),
            ev.StreamStarted(**c, at=t0 + 0.5, stream_sid="MZ1", replica="media-1"),
            ev.Dtmf(**c, at=t0 + 1, digit="12345"),  # longer than any key: never storable as is
            ev.TranscriptFinal(**c, at=t0 + 2, text="hi", audio_start_ms=1000, audio_end_ms=1400),
            ev.TurnRequested(**c, at=t0 + 2.1, turn_id=1, text="hi\x00there"),  # NUL: never
            ev.Dtmf(**c, at=t0 + 3, digit="1"),
            ev.Usage(**c, at=t0 + 4, provider="deepgram", metric="stt_seconds", quantity=4),
            ev.CallEnded(**c, at=t0 + 5, reason="caller-hangup", duration_s=5),
        ],
    )
    await asyncio.wait_for(record_call(deps, sid), LIMIT_S)

    async with deps.sessions() as session:
        call = await session.get(Call, sid)
        assert call is not None and call.status == "completed"
        assert call.end_reason == "caller-hangup" and call.last_entry_id == ids[-1]
        digits = (await session.scalars(select(DtmfPress.digit).where(DtmfPress.call_sid == sid)))
        assert list(digits) == ["1"]
        usage = await session.scalar(
            select(func.count()).select_from(UsageRecord).where(UsageRecord.call_sid == sid)
        )
        assert usage == 1
        dead = list(
            await session.scalars(
                select(DeadLetterRow)
                .where(DeadLetterRow.call_sid == sid)
                .order_by(DeadLetterRow.id)
            )
        )
    assert [d.entry_id for d in dead] == [ids[2], ids[4]]
    assert all(d.status == "dead" and d.attempts == 2 for d in dead)
    assert all(d.stream == call_log.key(sid) for d in dead)
    assert "DataError" in dead[0].error or "value too long" in dead[0].error
    assert ev.decode(dead[1].fields()) == ev.decode(
        {"type": "turn.requested", "e": dead[1].fields()["e"]}
    )
    assert "\x00" in json.loads(dead[1].fields()["e"])["text"]  # the NUL survived storage

    # Retried while the cause is still there: it fails again, stays dead, one more attempt.
    outcome = await retry(deps.sessions, redis, [dead[0].id])
    assert [o.ok for o in outcome] == [False]
    # The operator widens the column; `frontdesk deadletters retry ID` now stores the entry.
    async with deps.sessions() as session:
        await session.execute(text("ALTER TABLE call_dtmf ALTER COLUMN digit TYPE varchar(16)"))
        await session.commit()
    env = dict(
        os.environ, DATABASE_URL=private_infra.database_url, REDIS_URL=private_infra.redis_url
    )
    done = await cli(env, "retry", str(dead[0].id))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{dead[0].id}\tok" in done.stdout
    listed = await cli(env, "list")
    assert str(ids[4]) in listed.stdout and str(ids[2]) not in listed.stdout
    fresh = make_engine(private_infra.database_url)  # pooled plans here predate the ALTER
    try:
        async with make_sessions(fresh)() as session:
            digits = await session.scalars(
                select(DtmfPress.digit).where(DtmfPress.call_sid == sid)
            )
            assert sorted(digits) == ["1", "12345"]
            row = await session.get(DeadLetterRow, dead[0].id)
            assert row is not None and row.status == "retried" and row.attempts == 4
    finally:
        await fresh.dispose()


async def test_poison_work_items_are_dead_lettered_and_acked(
    deps: RecorderDeps, redis: Redis
) -> None:
    stream = f"test:calls:{uuid.uuid4().hex}"
    poison = [
        {"type": "call.started", "call_sid": "CA\x00" + "0" * 30},
        {"type": "call.started", "call_sid": "C" * 5000},
        {"call_sid": new_sid("CA")},  # no type
    ]
    entry_ids = [await redis.xadd(stream, fields) for fields in poison]  # type: ignore[arg-type]
    queue = WorkQueue(redis, stream, "recorder", "r1", claim_idle_ms=60_000)
    stop = asyncio.Event()

    async def handle(_: str, fields: dict[str, str]) -> None:
        await handle_work_item(deps, fields)

    workers = asyncio.create_task(
        run_workers(
            queue, handle, concurrency=4, block_ms=200, stop=stop,
            max_attempts=5, dead_letter=dead_letter_sink(deps.sessions),
        )
    )

    async def all_dead() -> bool:
        async with deps.sessions() as session:
            n = await session.scalar(
                select(func.count()).select_from(DeadLetterRow)
                .where(DeadLetterRow.stream == stream)
            )
        return n == 3 and (await redis.xpending(stream, "recorder"))["pending"] == 0

    try:
        await until(all_dead, "three dead letters, nothing pending")
    finally:
        stop.set()
        await workers
    async with deps.sessions() as session:
        rows = list(await session.scalars(
            select(DeadLetterRow).where(DeadLetterRow.stream == stream)
        ))
    rows.sort(key=lambda r: entry_ids.index(r.entry_id))
    assert [r.fields() for r in rows] == poison  # stored exactly, NUL and 5,000 characters too
    assert all(r.attempts == 1 and "PoisonItem" in r.error for r in rows)
    assert rows[0].call_sid == "CA\\x00" + "0" * 30 and len(rows[1].call_sid or "") == 64


async def test_usage_written_after_call_ended_is_stored_and_priced(
    deps: RecorderDeps, call_log: CallLog
) -> None:
    sid = new_sid("CA")
    tenant = await make_tenant(deps.sessions)
    c = {"call_sid": sid, "tenant_id": tenant}
    t0 = time.time() - 10
    await _append(
        call_log,
        [
            ev.CallStarted(**c, at=t0, from_number="+447700900123", to_number="+441632960001"),
            ev.Usage(**c, at=t0 + 1, provider="gpt-4o-mini", metric="prompt_tokens", quantity=100),
            ev.CallEnded(**c, at=t0 + 2, reason="agent-ended", duration_s=2),
        ],
    )
    following = asyncio.create_task(
        record_call(dataclasses.replace(deps, late_grace_s=3.0), sid)
    )

    async def completed() -> bool:
        async with deps.sessions() as session:
            return await session.scalar(select(Call.status).where(Call.call_sid == sid)) == (
                "completed"
            )

    await until(completed, "call.ended stored")
    # The last turn's LLM usage lands after the call ended (the brain finishes its stream).
    await call_log.append(
        ev.Usage(**c, provider="gpt-4o-mini", metric="completion_tokens", quantity=40)
    )

    async def usage_stored() -> bool:
        async with deps.sessions() as session:
            n = await session.scalar(
                select(func.count()).select_from(UsageRecord)
                .where(UsageRecord.call_sid == sid, UsageRecord.metric == "completion_tokens")
            )
        return n == 1

    await until(usage_stored, "late usage stored")
    await asyncio.wait_for(following, LIMIT_S)  # the grace ends; the call is priced again
    async with deps.sessions() as session:
        line = await session.scalar(
            select(CostLineItem).where(
                CostLineItem.call_sid == sid, CostLineItem.metric == "completion_tokens"
            )
        )
        cost = await session.get(CallCost, sid)
    assert line is not None and line.quantity == Decimal(40) and line.amount_minor > 0
    assert cost is not None and cost.total_minor >= line.amount_minor


RECLAIM_MS: int = Settings.model_fields["claim_idle_ms"].default


async def test_calls_that_never_end_cannot_starve_a_normal_call(
    deps: RecorderDeps, call_log: CallLog, redis: Redis
) -> None:
    """2,000 calls whose stream never started (call.started, then nothing), then one normal call,
    through 200 slots: each abandoned call is ended after its (short) life, so the normal call
    gets a slot and is recorded."""
    abandoned = [new_sid("CA") for _ in range(2000)]
    stream = f"test:calls:{uuid.uuid4().hex}"
    pipe = redis.pipeline(transaction=False)
    for sid in abandoned:
        started = ev.CallStarted(call_sid=sid, from_number="+447700900001", to_number="+4416")
        pipe.xadd(call_log.key(sid), ev.encode(started))  # type: ignore[arg-type]
        pipe.xadd(stream, {"type": "call.started", "call_sid": sid})
    await pipe.execute()
    normal = new_sid("CA")
    c = {"call_sid": normal}
    await _append(
        call_log,
        [
            ev.CallStarted(**c, from_number="+447700900123", to_number="+441632960001"),
            ev.CallEnded(**c, reason="caller-hangup", duration_s=1),
        ],
    )
    await redis.xadd(stream, {"type": "call.started", "call_sid": normal})
    short = dataclasses.replace(deps, max_call_s=1.0)
    # The recorder's own reclaim (CLAIM_IDLE_MS, 15 s): on a busy CI box 200 handlers share a
    # Postgres pool of 15, and a handler that waited out the pool's 30 s failed its item; with
    # no reclaim that item stayed pending and the test waited its 600 s for nothing.
    queue = WorkQueue(redis, stream, "recorder", "r1", claim_idle_ms=RECLAIM_MS)
    stop = asyncio.Event()

    async def handle(_: str, fields: dict[str, str]) -> None:
        await handle_work_item(short, fields)

    workers = asyncio.create_task(
        run_workers(queue, handle, concurrency=200, block_ms=200, stop=stop, drain_s=5)
    )

    async def normal_recorded() -> bool:
        async with deps.sessions() as session:
            status = await session.scalar(select(Call.status).where(Call.call_sid == normal))
        return status == "completed"

    try:
        await until(normal_recorded, "the normal call recorded", limit_s=600)
        await until(
            lambda: _pending_is_zero(redis, stream), "every work item acked", limit_s=600
        )
    finally:
        stop.set()
        await workers
    async with deps.sessions() as session:
        reasons = dict(
            (await session.execute(
                select(Call.end_reason, func.count())
                .where(Call.call_sid.in_(abandoned)).group_by(Call.end_reason)
            )).all()
        )
        normal_call = await session.get(Call, normal)
    assert reasons == {"recorder-timeout": 2000}
    assert normal_call is not None and normal_call.end_reason == "caller-hangup"
    # the recorder's call.ended is in the log too, for anyone reading it (after-stream)
    ended = [e for _, e in await call_log.entries(abandoned[0]) if isinstance(e, ev.CallEnded)]
    assert [e.reason for e in ended] == ["recorder-timeout"]


async def _pending_is_zero(redis: Redis, stream: str) -> bool:
    return int((await redis.xpending(stream, "recorder"))["pending"]) == 0


async def test_transcript_lines_have_start_times_and_no_machine_cue(
    deps: RecorderDeps, call_log: CallLog
) -> None:
    """A caller turn after an agent-initiated one (a reprompt takes turn 2), a voice-agent turn
    with no transcript, and the answering machine cue (a system turn)."""
    sid = new_sid("CA")
    c = {"call_sid": sid}
    t0 = time.time() - 60
    await _append(
        call_log,
        [
            ev.CallStarted(**c, at=t0, from_number="+447700900123", to_number="+441632960001"),
            ev.StreamStarted(**c, at=t0 + 0.5, stream_sid="MZ1", replica="media-1"),
            ev.TranscriptFinal(**c, at=t0 + 2, text="hi", audio_start_ms=1000, audio_end_ms=1400),
            ev.TurnRequested(**c, at=t0 + 2.1, turn_id=1, text="hi"),
            ev.AgentText(**c, at=t0 + 10, turn_id=2, seq=0, text="Are you still there?"),
            ev.TranscriptFinal(**c, at=t0 + 14, text="yes", audio_start_ms=13000,
                               audio_end_ms=13300),
            ev.TurnRequested(**c, at=t0 + 14.1, turn_id=3, text="yes"),
            ev.TurnRequested(**c, at=t0 + 20, turn_id=4, text="book me in"),  # no transcript
            ev.TurnRequested(**c, at=t0 + 25, turn_id=5, text="The beep", source="system"),
            ev.CallEnded(**c, at=t0 + 30, reason="caller-hangup", duration_s=30),
        ],
    )
    await asyncio.wait_for(record_call(deps, sid), LIMIT_S)
    async with deps.sessions() as session:
        lines = list(await session.scalars(
            select(TranscriptLine).where(TranscriptLine.call_sid == sid, TranscriptLine.role
                                         == "caller").order_by(TranscriptLine.id)
        ))
    assert [(line.turn_id, line.start_ms, line.end_ms) for line in lines] == [
        (1, 1500, 1900),  # stream started 500 ms into the call
        (3, 13500, 13800),  # not lost to turn 2 (the reprompt's id)
        (4, 20000, 20000),  # no audio span: when the turn was asked for
    ]
