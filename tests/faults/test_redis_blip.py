"""A Redis restart (about a second down, AOF on) under a worker loop, a running recorder process
and a call's appends: nothing exits, work written after the blip is done, records complete,
and appends made while Redis was away land in order."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import select

from services.media.continuity.phrase_cache import BestEffortPhrases
from services.media.twilio.stream_guard import Claim, StreamGuard
from shared.bus.append_buffer import QUEUED, OrderedAppender
from shared.bus.call_end import end_call, end_call_when_available
from shared.bus.streams import CallLog, connect
from shared.bus.work_queue import WorkQueue, run_workers
from shared.contract import events as ev
from shared.contract import keys
from shared.contract import stream_token as st
from shared.db.engine import make_engine, make_sessions
from shared.db.models import Call
from sim.twilio_webhook import new_sid
from tests.conditions import until
from tests.conftest import ROOT, Infra
from tests.faults.redis_server import OwnRedis

LIMIT_S = 120.0
DOWN_S = 1.0
"""How long Redis stays down (the outage under test, not a wait for a condition)."""


async def blip(server: OwnRedis) -> None:
    """Kill Redis, keep it down for DOWN_S, start it again (same port, same AOF)."""
    await asyncio.to_thread(server.stop)
    await asyncio.sleep(DOWN_S)
    await asyncio.to_thread(server.start)


async def test_worker_loop_survives_a_redis_restart(own_redis: OwnRedis) -> None:
    redis = connect(own_redis.url)
    blocking = connect(own_redis.url, max_connections=4, socket_timeout=3)
    stream = "test:work"
    done: list[str] = []
    stop = asyncio.Event()

    async def handler(_: str, fields: dict[str, str]) -> None:
        done.append(fields["n"])

    queue = WorkQueue(blocking, stream, "g", "w1", claim_idle_ms=5_000)
    workers = asyncio.create_task(
        run_workers(queue, handler, concurrency=4, block_ms=500, stop=stop)
    )
    try:
        await queue.ensure_group()
        for n in range(5):
            await redis.xadd(stream, {"n": f"before-{n}"})
        await until(lambda: _true(len(done) == 5), "work before the blip")
        await blip(own_redis)
        assert not workers.done()
        for n in range(5):
            await redis.xadd(stream, {"n": f"after-{n}"})
        await until(lambda: _true(len(done) == 10), "work after the blip")
        assert not workers.done()

        async def all_acked() -> bool:
            return int((await redis.xpending(stream, "g"))["pending"]) == 0

        await until(all_acked, "every entry acked")
    finally:
        stop.set()
        await workers
        await redis.aclose()
        await blocking.aclose()
    expected = [f"before-{n}" for n in range(5)] + [f"after-{n}" for n in range(5)]
    assert sorted(done) == sorted(expected)


async def _true(value: bool) -> bool:
    return value


def _call(sid: str, t0: float) -> list[ev.Event]:
    c = {"call_sid": sid}
    return [
        ev.CallStarted(**c, at=t0, from_number="+447700900123", to_number="+441632960001"),
        ev.TranscriptFinal(**c, at=t0 + 1, text="hi", audio_start_ms=100, audio_end_ms=400),
        ev.TurnRequested(**c, at=t0 + 1.1, turn_id=1, text="hi"),
        ev.Usage(**c, at=t0 + 1.5, provider="deepgram", metric="stt_seconds", quantity=2),
        ev.CallEnded(**c, at=t0 + 2, reason="caller-hangup", duration_s=2),
    ]


async def test_recorder_process_survives_a_redis_restart(
    own_redis: OwnRedis, infra: Infra, tmp_path: Path
) -> None:
    redis = connect(own_redis.url)
    log = CallLog(redis, 16)
    env = dict(
        os.environ,
        REDIS_URL=own_redis.url,
        DATABASE_URL=infra.database_url,
        ANALYSIS_ENABLED="false",
        RECORDER_LATE_GRACE_S="0.2",
        STREAM_BLOCK_MS="1000",
        LOG_JSON="false",
        REPLICA_NAME="recorder-blip",
        ALLOW_INSECURE_DEFAULTS="true",
        METRICS_PORT="0",
    )
    log_file = tmp_path / "recorder.log"
    proc = _spawn([sys.executable, "-m", "services.recorder"], env, log_file)
    engine = make_engine(infra.database_url)
    sessions = make_sessions(engine)

    async def status(sid: str) -> str | None:
        async with sessions() as session:
            found: str | None = await session.scalar(
                select(Call.status).where(Call.call_sid == sid)
            )
            return found

    async def start(sid: str, events: list[ev.Event]) -> None:
        await log.append_then_publish(
            events[0], keys.CALLS, {"call_sid": sid, "type": "call.started"}
        )
        for event in events[1:]:
            await log.append(event)

    try:
        before, during, after = new_sid("CA"), new_sid("CA"), new_sid("CA")
        t0 = time.time() - 10
        await start(before, _call(before, t0))
        await until(lambda: _is(status(before), "completed"), "the call before the blip")
        # a call in progress across the blip: started before, ended after
        events = _call(during, t0)
        await start(during, events[:3])
        await until(lambda: _is(status(during), "in-progress"), "the call being followed")
        await blip(own_redis)
        redis_back = time.monotonic()
        for event in events[3:]:
            await log.append(event)
        await log.publish(keys.CALLS, {"call_sid": during, "type": "call.ended"})
        await start(after, _call(after, t0))
        await until(lambda: _is(status(during), "completed"), "the call across the blip")
        await until(lambda: _is(status(after), "completed"), "the call after the blip")
        recorded_s = time.monotonic() - redis_back
        assert proc.poll() is None, "the recorder exited"
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        await engine.dispose()
        await redis.aclose()
    text = log_file.read_text(errors="replace")
    down = re.findall(r"(redis \(.*?\)) unavailable \(", text)
    back = re.findall(r"(redis \(.*?\)) back after ([0-9.]+) s", text)
    # every outage is logged once when it starts and once when it ends, never per retry
    assert down and sorted(set(down)) == sorted(down) and len(back) == len(down), text[-3000:]
    for what, seconds in back:  # figures for the report (pytest -s), not asserted
        print(f"{what}: outage logged for {seconds} s (Redis down {DOWN_S} s)")
    print(f"calls across and after the blip recorded {recorded_s:.2f} s after Redis answered")


def _spawn(argv: list[str], env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    with open(log_file, "wb") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _is(value: Awaitable[str | None], expected: str) -> bool:
    return await value == expected


async def test_call_log_appends_made_while_redis_is_away_land_in_order(
    own_redis: OwnRedis,
) -> None:
    redis = connect(own_redis.url)
    log = CallLog(redis, 16)
    sid = new_sid("CA")
    appender = OrderedAppender(log, limit=100)
    try:
        first = await appender.append(ev.TurnRequested(call_sid=sid, turn_id=1, text="one"))
        assert first != QUEUED
        await asyncio.to_thread(own_redis.stop)
        queued = [
            await appender.append(ev.TurnRequested(call_sid=sid, turn_id=n, text=str(n)))
            for n in range(2, 6)
        ]
        assert queued == [QUEUED] * 4  # the caller goes on; nothing raised
        await asyncio.to_thread(own_redis.start)
        assert await appender.drain(LIMIT_S)
        later = await appender.append(ev.TurnRequested(call_sid=sid, turn_id=6, text="six"))
        assert later != QUEUED
        turns = [e.turn_id for _, e in await log.entries(sid) if isinstance(e, ev.TurnRequested)]
        assert turns == [1, 2, 3, 4, 5, 6]
        assert appender.dropped == 0
    finally:
        await redis.aclose()


async def test_a_turn_and_its_work_item_written_while_redis_is_away_are_queued_in_order(
    own_redis: OwnRedis,
) -> None:
    """A caller turn (`append_then_publish`: the event and its `fd:turns` item) made during a
    blip is queued with the call's other appends, not raised (a raise ended the call as a
    provider error, 10 of 20 calls in the fault suite's Redis restart); once Redis is back the
    event lands in its place, and its work item is published."""
    redis = connect(own_redis.url)
    log = CallLog(redis, 16)
    sid = new_sid("CA")
    work = f"test:turns:{sid}"
    appender = OrderedAppender(log, limit=100)
    try:
        assert await appender.append(ev.SpeechStarted(call_sid=sid, audio_ms=0)) != QUEUED
        await asyncio.to_thread(own_redis.stop)
        turn = ev.TurnRequested(call_sid=sid, turn_id=1, text="one")
        item = {"call_sid": sid, "turn_id": "1"}
        assert await appender.append(turn, (work, item)) == QUEUED  # nothing raised
        assert await appender.append(ev.LatencyMark(
            call_sid=sid, turn_id=1, stage="speech_end", stage_at=time.time()
        )) == QUEUED
        await asyncio.to_thread(own_redis.start)
        assert await appender.drain(LIMIT_S)
        entries = await log.entries(sid)
        assert [e.type for _, e in entries] == [
            "caller.speech_started", "turn.requested", "latency.mark"
        ]
        published = await redis.xrange(work) or []
        assert [fields for _, fields in published] == [item]
    finally:
        await redis.aclose()


async def test_the_phrase_cache_is_a_miss_while_redis_is_away(own_redis: OwnRedis) -> None:
    """Media's greeting/phrase cache never fails a reply: while Redis is away a lookup is a
    miss and a store is skipped (they raised, and ended 6 of 20 calls as provider errors in
    the fault suite's Redis restart); once Redis is back it caches again."""
    binary = connect(own_redis.url, decode=False)
    cache = BestEffortPhrases(binary)
    try:
        await cache.put("voice", "Goodbye!", b"\x7f" * 160)
        assert await cache.get("voice", "Goodbye!") == b"\x7f" * 160
        await asyncio.to_thread(own_redis.stop)
        assert await cache.get("voice", "Goodbye!") is None  # a miss: TTS speaks it
        await cache.put("voice", "You're welcome.", b"\x7e" * 160)  # skipped, not raised
        await asyncio.to_thread(own_redis.start)
        await cache.put("voice", "You're welcome.", b"\x7e" * 160)
        assert await cache.get("voice", "You're welcome.") == b"\x7e" * 160
    finally:
        await binary.aclose()


async def test_a_call_ended_while_redis_is_away_is_ended_by_its_stream_once_it_is_back(
    own_redis: OwnRedis,
) -> None:
    """Media's end of a stream in a blip: the events queued meanwhile land first, then
    `call.ended` with the stream's own reason, once (a plain `end_call` raised, and the call
    was left to the reaper's `media-lost`)."""
    redis = connect(own_redis.url)
    log = CallLog(redis, 16)
    sid = new_sid("CA")
    appender = OrderedAppender(log, limit=100)
    ended = ev.CallEnded(call_sid=sid, reason="agent-ended", duration_s=3.0)
    try:
        assert await appender.append(ev.SpeechStarted(call_sid=sid, audio_ms=0)) != QUEUED
        await asyncio.to_thread(own_redis.stop)
        assert await appender.append(ev.TurnRequested(call_sid=sid, turn_id=1, text="bye")) == (
            QUEUED
        )
        with pytest.raises(RedisConnectionError):
            await end_call(log, ended)

        async def finish() -> str | None:  # what `_finish` does
            await appender.drain(LIMIT_S)
            return await end_call_when_available(log, ended, LIMIT_S)

        finishing = asyncio.create_task(finish())
        await asyncio.sleep(DOWN_S)  # the outage under test
        assert not finishing.done()
        await asyncio.to_thread(own_redis.start)
        assert await finishing is not None
        entries = await log.entries(sid)
        assert [e.type for _, e in entries] == [
            "caller.speech_started", "turn.requested", "call.ended"
        ]
        assert entries[-1][1] == ended.model_copy(update={"at": entries[-1][1].at})
        assert await end_call(log, ended) is None  # ended once
    finally:
        await redis.aclose()


async def test_a_stream_that_starts_while_redis_is_away_is_served_once_it_is_back(
    own_redis: OwnRedis,
) -> None:
    """The stream's claim (token once, one live stream) waits out a blip instead of failing
    the stream at once (close 1011, and after-stream's reconnect loop while Redis is away);
    without patience it still raises, as before."""
    redis = connect(own_redis.url)
    sid = new_sid("CA")
    token = st.verify("blip-secret", sid, st.issue("blip-secret", sid, 120))
    guard = StreamGuard(redis, 16, sid, token, 5.0)
    try:
        await asyncio.to_thread(own_redis.stop)
        with pytest.raises(RedisConnectionError):
            await guard.claim_or_wait()
        claiming = asyncio.create_task(guard.claim_or_wait(outage_patience_s=LIMIT_S))
        await asyncio.sleep(DOWN_S)  # the outage under test
        assert not claiming.done()
        await asyncio.to_thread(own_redis.start)
        assert await claiming is Claim.OK
        assert (await guard.claim())[0] is Claim.USED  # the token still works once
    finally:
        await redis.aclose()
