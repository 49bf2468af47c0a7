"""Tool results that tell the truth: a tool slowed past the brain's deadline (at the database,
by a trigger that waits on an advisory lock the test holds) commits nothing and says so; the same
caller asking again for a booking they hold gets it back instead of "taken"."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio
from redis.asyncio import Redis
from sqlalchemy import select

from services.tools.executor import TOO_LATE, execute
from shared.contract import events as ev
from shared.db.models import Booking, ToolInvocation
from tests.conftest import Infra
from tests.integration.test_booking_support import Desk, StaffSpec, open_desk

SLOT = "2031-01-14T11:00"  # a Tuesday, well past the lead time from NOW
LOCK = 731_013
CALLER = "+447700900555"
SLOW_INSERTS = f"""
CREATE OR REPLACE FUNCTION fd_test_slow_booking() RETURNS trigger AS $$
BEGIN
  PERFORM pg_advisory_lock({LOCK});
  PERFORM pg_advisory_unlock({LOCK});
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER fd_test_slow_booking BEFORE INSERT ON bookings
  FOR EACH ROW EXECUTE FUNCTION fd_test_slow_booking();
"""


@pytest_asyncio.fixture
async def desk(infra: Infra, redis: Redis) -> AsyncIterator[Desk]:
    async for made in open_desk(infra.database_url, redis):
        yield made


@pytest_asyncio.fixture
async def held_lock(infra: Infra) -> AsyncIterator[asyncpg.Connection]:
    """Bookings inserted while this connection holds the advisory lock wait for its release."""
    conn = await asyncpg.connect(infra.database_url.replace("+asyncpg", ""))
    await conn.execute(SLOW_INSERTS)
    await conn.execute(f"SELECT pg_advisory_lock({LOCK})")
    try:
        yield conn
    finally:
        await conn.execute("SELECT pg_advisory_unlock_all()")
        await conn.execute("DROP TRIGGER IF EXISTS fd_test_slow_booking ON bookings")
        await conn.close()


def _args(phone: str = CALLER) -> dict[str, object]:
    return {"customer_name": "Ann", "phone": phone, "service": "men's haircut", "start": SLOT}


async def _request(desk: Desk, call_sid: str, tenant_id: str, deadline_at: float) -> str:
    return await desk.deps.log.append(
        ev.ToolRequested(
            call_sid=call_sid,
            tenant_id=tenant_id,
            turn_id=1,
            tool_call_id="call_late",
            name="book_appointment",
            arguments=json.dumps(_args()),
            deadline_at=deadline_at,
        )
    )


async def _waiting_on_lock(conn: asyncpg.Connection) -> bool:
    """Whether some session is blocked on the test's advisory lock."""
    waiting = await conn.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $1",
        LOCK,
    )
    return bool(waiting)


async def test_a_booking_slowed_past_its_deadline_commits_nothing_and_says_so(
    desk: Desk, held_lock: asyncpg.Connection
) -> None:
    shop = await desk.shop(staff=[StaffSpec("Dave")])
    call_sid = await desk.call(shop, CALLER)
    deadline_at = time.time() + 1.0
    entry_id = await _request(desk, call_sid, shop.tenant_id, deadline_at)
    running = asyncio.create_task(execute(desk.deps, call_sid, entry_id))
    bound = time.monotonic() + 30
    while not await _waiting_on_lock(held_lock):  # the insert is inside Postgres, stuck
        assert time.monotonic() < bound and not running.done()
        await asyncio.sleep(0.02)
    while time.time() <= deadline_at:  # the brain's deadline passes while the insert waits
        await asyncio.sleep(0.05)
    await held_lock.execute(f"SELECT pg_advisory_unlock({LOCK})")
    await asyncio.wait_for(running, 30)

    (result,) = await desk.results(call_sid, "call_late")
    assert (result.ok, json.loads(result.content)) == (False, {"error": TOO_LATE})
    assert result.by == "tools"
    assert await desk.confirmed(shop) == []  # nothing booked after the brain gave up
    async with desk.sessions() as session:
        row = await session.get(ToolInvocation, "call_late")
    assert row is not None and row.ok is False
    assert row.error is not None and row.error.startswith("deadline missed by")


async def test_a_request_already_past_its_deadline_is_not_run(desk: Desk) -> None:
    shop = await desk.shop(staff=[StaffSpec("Dave")])
    call_sid = await desk.call(shop, CALLER)
    entry_id = await _request(desk, call_sid, shop.tenant_id, time.time() - 5)
    await execute(desk.deps, call_sid, entry_id)
    (result,) = await desk.results(call_sid, "call_late")
    assert not result.ok and await desk.confirmed(shop) == []


async def test_the_same_caller_asking_again_for_their_slot_gets_their_booking(
    desk: Desk,
) -> None:
    shop = await desk.shop(staff=[StaffSpec("Dave")])
    call_sid = await desk.call(shop, CALLER)
    ok, first = await desk.tool(call_sid, shop, "book_appointment", _args())
    assert ok and first["status"] == "confirmed"
    ok, again = await desk.tool(call_sid, shop, "book_appointment", _args())  # new tool call id
    assert ok and again["status"] == "confirmed" and again["already_booked"] is True
    assert again["booking_id"] == first["booking_id"]

    other = await desk.call(shop, "+447700900556")
    ok, theirs = await desk.tool(other, shop, "book_appointment", _args("+447700900556"))
    assert ok and theirs["status"] == "taken"
    # Someone else naming this caller's phone learns nothing about their booking.
    ok, spoof = await desk.tool(other, shop, "book_appointment", _args())
    assert ok and spoof["status"] == "taken"
    async with desk.sessions() as session:
        rows = await session.scalars(select(Booking).where(Booking.tenant_id == shop.tenant_id))
        assert len(list(rows)) == 1


async def test_the_same_caller_racing_two_tool_calls_for_one_slot_gets_one_booking(
    desk: Desk,
) -> None:
    shop = await desk.shop(staff=[StaffSpec("Dave")])
    call_sid = await desk.call(shop, CALLER)
    outcomes = await asyncio.gather(
        *(desk.tool(call_sid, shop, "book_appointment", _args()) for _ in range(5))
    )
    assert {(ok, c["status"]) for ok, c in outcomes} == {(True, "confirmed")}
    assert len({c["booking_id"] for _, c in outcomes}) == 1
    assert len(await desk.confirmed(shop)) == 1
