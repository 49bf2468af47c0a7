"""Kill or restart a part of a running two-replica platform in the middle of a call: the turn is
still answered, the caller's silence is measured (on the caller's own timeline, from audio frame
arrival times; the goal is 3 s, printed as a FIGURE, and only a hung call fails), nothing is
booked or stored twice, and what the caller was told matches the bookings."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import datetime
from datetime import time as clock_time

import asyncpg
from sqlalchemy import func, select

from shared.bus.streams import CallLog, connect
from shared.contract import events as ev
from shared.contract import keys
from shared.db.engine import make_engine, make_sessions
from shared.db.models import Booking, CallEvent, ToolInvocation
from shared.tenancy.call_records import CallRecord
from sim.twilio_caller import CallResult, CallScript, place_call
from tests.e2e.test_booking_calls import next_open_weekday
from tests.e2e.test_call_end_to_end import wait_for_record
from tests.faults.conftest import LONDON, FaultStack, booking_policy, holder_of

BOOK = "I'd like to book a haircut please."
BYE = "Great, thanks, bye."
BOOKED = "You're booked with Dave, {spoken}."
SILENCE_GOAL_MS = 3000
"""The issue's goal for the caller's silence after a kill: a figure each scenario prints
(docs/reliability.md), not an assert: a loaded box stretches wall time (the standards)."""
HUNG_MS = 10_000
"""More silence than this is no slow failover but a hung call: that fails."""


def report_silence(what: str, silence_ms: float) -> None:
    """Print the figure (`pytest -s -m faults | grep FIGURE`) and fail only a hung call."""
    goal = "within" if silence_ms <= SILENCE_GOAL_MS else "OVER"
    print(f"\nFIGURE silence {what}: {silence_ms:.0f} ms ({goal} the {SILENCE_GOAL_MS} ms goal)")
    assert silence_ms <= HUNG_MS, f"{silence_ms:.0f} ms of silence {what}: the call hung"
LOCK = 731_013
SLOW_INSERTS = f"""
CREATE OR REPLACE FUNCTION fd_fault_slow_booking() RETURNS trigger AS $$
BEGIN
  PERFORM pg_advisory_lock({LOCK});
  PERFORM pg_advisory_unlock({LOCK});
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER fd_fault_slow_booking BEFORE INSERT ON bookings
  FOR EACH ROW EXECUTE FUNCTION fd_fault_slow_booking();
"""


def slot(hour: int) -> datetime:
    """A free start on the next open weekday (each scenario books its own hour)."""
    return datetime.combine(
        next_open_weekday(datetime.now(LONDON).date()), clock_time(hour), LONDON
    )


def silence_after_line(result: CallResult, index: int) -> float:
    """Caller-side ms from the end of caller line `index` to the next agent audio frame."""
    end = result.lines[index].end_ms
    starts = [e.t_ms for e in result.events_of("agent-audio-start") if e.t_ms > end]
    assert starts, f"the agent never answered line {index}"
    return starts[0] - end


async def start_call(fault: FaultStack, lines: list[str]) -> tuple[str, asyncio.Task[CallResult]]:
    options = fault.caller()
    assert options.call_sid is not None
    return options.call_sid, asyncio.create_task(place_call(options, CallScript(lines=lines)))


async def finished(
    fault: FaultStack, sid: str, call: asyncio.Task[CallResult], bound_s: float = 90
) -> CallRecord:
    result = await asyncio.wait_for(call, bound_s)
    assert result.error is None, result.error
    return await wait_for_record(fault.database_url, sid, 60)


async def bookings_of(fault: FaultStack, sid: str) -> list[Booking]:
    engine = make_engine(fault.database_url)
    try:
        async with make_sessions(engine)() as session:
            return list(await session.scalars(select(Booking).where(Booking.call_sid == sid)))
    finally:
        await engine.dispose()


async def log_of(fault: FaultStack, sid: str) -> list[tuple[str, ev.Event]]:
    client = connect(fault.redis.url)
    try:
        return await CallLog(client, 16).entries(sid)
    finally:
        await client.aclose()


async def assert_spoken_once(fault: FaultStack, sid: str) -> None:
    """No (turn, seq) chunk of agent text was written twice (by a dead and a live brain)."""
    chunks = [
        (e.turn_id, e.seq) for _, e in await log_of(fault, sid) if isinstance(e, ev.AgentText)
    ]
    assert len(chunks) == len(set(chunks)), chunks


def agent_said(record: CallRecord) -> str:
    return " ".join(line.text for line in record.lines if line.role == "agent")


async def _pg(fault: FaultStack) -> asyncpg.Connection:
    return await asyncpg.connect(fault.database_url)


async def _lock_waiters(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND objid = $1",
            LOCK,
        )
    )


async def until_waiting_on_lock(conn: asyncpg.Connection) -> None:
    deadline = time.monotonic() + 30
    while not await _lock_waiters(conn):
        assert time.monotonic() < deadline, "no booking reached the database"
        await asyncio.sleep(0.01)


# ---- scenarios that pass with this part (C) -----------------------------------------------------
async def test_brain_killed_mid_turn_the_turn_is_answered(fault: FaultStack) -> None:
    start = slot(10)
    fault.set_policy(booking_policy(start, BOOKED))
    sid, call = await start_call(fault, [BOOK, BYE])
    # kill -9 while it holds the turn
    await fault.kill(await holder_of(fault, keys.TURNS, "brain", sid))
    record = await finished(fault, sid, call)

    report_silence("after the booking request", silence_after_line(call.result(), 0))
    [booking] = await bookings_of(fault, sid)
    assert booking.status == "confirmed" and booking.starts_at == start
    assert "booked with Dave" in agent_said(record)
    await assert_spoken_once(fault, sid)


async def test_tools_killed_mid_tool_call_the_booking_is_made_once(fault: FaultStack) -> None:
    start = slot(11)
    fault.set_policy(booking_policy(start, BOOKED))
    conn = await _pg(fault)
    try:
        await conn.execute(SLOW_INSERTS)
        await conn.execute(f"SELECT pg_advisory_lock({LOCK})")
        sid, call = await start_call(fault, [BOOK, BYE])
        holder = await holder_of(fault, keys.TOOLS, "tools", sid)
        await until_waiting_on_lock(conn)  # the holder is inside its booking transaction
        await fault.kill(holder)
        await conn.execute(f"SELECT pg_advisory_unlock({LOCK})")
        record = await finished(fault, sid, call)
    finally:
        await conn.execute("SELECT pg_advisory_unlock_all()")
        await conn.execute("DROP TRIGGER IF EXISTS fd_fault_slow_booking ON bookings")
        await conn.close()

    report_silence("after the booking request", silence_after_line(call.result(), 0))
    [booking] = await bookings_of(fault, sid)
    assert booking.starts_at == start
    assert "booked with Dave" in agent_said(record)
    assert [t.ok for t in record.tools] == [True]  # one invocation, the successful one
    await assert_spoken_once(fault, sid)


async def test_a_tool_slower_than_the_brains_timeout_books_nothing_it_denied(
    fault: FaultStack,
) -> None:
    """The booking is held in Postgres past the brain's timeout: the caller is told it did not
    work, and indeed nothing is booked; the invocation says so truthfully."""
    start = slot(12)
    fault.set_policy(booking_policy(start, BOOKED))
    conn = await _pg(fault)
    try:
        await conn.execute(SLOW_INSERTS)
        await conn.execute(f"SELECT pg_advisory_lock({LOCK})")
        sid, call = await start_call(fault, [BOOK, BYE])
        await until_waiting_on_lock(conn)
        client = fault.redis_client()
        try:  # hold the booking until the brain has written its timeout result
            deadline = time.monotonic() + 30
            while not any(
                isinstance(e, ev.ToolResult) and e.by == "brain-timeout"
                for _, e in await log_of(fault, sid)
            ):
                assert time.monotonic() < deadline, "the brain never timed out"
                await asyncio.sleep(0.05)
        finally:
            client.close()
        await conn.execute(f"SELECT pg_advisory_unlock({LOCK})")
        record = await finished(fault, sid, call)
    finally:
        await conn.execute("SELECT pg_advisory_unlock_all()")
        await conn.execute("DROP TRIGGER IF EXISTS fd_fault_slow_booking ON bookings")
        await conn.close()

    assert await bookings_of(fault, sid) == []
    assert "booked with Dave" not in agent_said(record)
    engine = make_engine(fault.database_url)
    try:
        async with make_sessions(engine)() as session:
            rows = list(
                await session.scalars(select(ToolInvocation).where(ToolInvocation.call_sid == sid))
            )
    finally:
        await engine.dispose()
    assert [(r.ok, r.error is not None) for r in rows] == [(False, True)]


async def test_recorder_killed_mid_call_the_record_is_complete(fault: FaultStack) -> None:
    fault.set_policy(booking_policy(slot(13), BOOKED))
    sid, call = await start_call(fault, ["How much is a haircut?", BYE])
    await fault.kill(await holder_of(fault, keys.CALLS, "recorder", sid))
    record = await finished(fault, sid, call)
    await assert_recorded_once(fault, sid, record, ["How much is a haircut?", BYE])


async def assert_recorded_once(
    fault: FaultStack, sid: str, record: CallRecord, lines: list[str]
) -> None:
    log_ids = sorted(entry_id for entry_id, _ in await log_of(fault, sid))
    engine = make_engine(fault.database_url)
    try:
        async with make_sessions(engine)() as session:
            stored = sorted(
                await session.scalars(select(CallEvent.entry_id).where(CallEvent.call_sid == sid))
            )
            dupes = await session.scalar(
                select(func.count() - func.count(func.distinct(CallEvent.entry_id))).where(
                    CallEvent.call_sid == sid
                )
            )
    finally:
        await engine.dispose()
    assert dupes == 0 and stored == log_ids
    assert [line.text for line in record.lines if line.role == "caller"] == lines


async def test_postgres_restarted_mid_call_the_call_is_recorded_completely(
    fault: FaultStack,
) -> None:
    fault.set_policy(booking_policy(slot(14), BOOKED))
    lines = ["How much is a haircut?", "And how much is a beard trim?", BYE]
    sid, call = await start_call(fault, lines)
    await holder_of(fault, keys.TURNS, "brain", sid)  # the call is under way
    await asyncio.to_thread(fault.pg.stop, "fast")
    await asyncio.to_thread(fault.pg.start)
    record = await finished(fault, sid, call)
    await assert_recorded_once(fault, sid, record, lines)


# ---- Redis restart, media kill -9 and media SIGTERM ---------------------------------------------
async def test_redis_restarted_mid_call_the_call_goes_on(fault: FaultStack) -> None:
    fault.set_policy(booking_policy(slot(15), BOOKED))
    lines = ["How much is a haircut?", BYE]
    sid, call = await start_call(fault, lines)
    await _caller_turn_requested(fault, sid)
    fault.redis.stop()  # SIGTERM: AOF (fsync always) keeps every acknowledged write
    fault.redis.start()
    record = await finished(fault, sid, call, bound_s=25)
    await assert_recorded_once(fault, sid, record, lines)


async def _caller_turn_requested(fault: FaultStack, sid: str) -> None:
    """Mid-call: the caller's first line has become a turn (its answer may be under way)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(isinstance(e, ev.TurnRequested) for _, e in await log_of(fault, sid)):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the caller's first line never became a turn")


async def _media_of(fault: FaultStack, sid: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for _, e in await log_of(fault, sid):
            if isinstance(e, ev.StreamStarted):
                return e.replica
        await asyncio.sleep(0.02)
    raise AssertionError("no media replica took the stream")


async def test_media_killed_mid_call_the_caller_is_reconnected(fault: FaultStack) -> None:
    fault.set_policy(booking_policy(slot(16), BOOKED))
    lines = ["How much is a haircut?", BYE]
    sid, call = await start_call(fault, lines)
    await _caller_turn_requested(fault, sid)
    await fault.kill(await _media_of(fault, sid))
    record = await finished(fault, sid, call, bound_s=25)
    assert [line.text for line in record.lines if line.role == "caller"] == lines
    report_silence("after the first line", silence_after_line(call.result(), 0))


async def test_media_sigterm_mid_call_drains_then_the_call_goes_on(fault: FaultStack) -> None:
    fault.set_policy(booking_policy(slot(17), BOOKED))
    lines = ["How much is a haircut?", BYE]
    sid, call = await start_call(fault, lines)
    await _caller_turn_requested(fault, sid)
    await fault.kill(await _media_of(fault, sid), signal.SIGTERM)
    record = await finished(fault, sid, call, bound_s=25)
    assert [line.text for line in record.lines if line.role == "caller"] == lines
    report_silence("after the first line", silence_after_line(call.result(), 0))
