"""check_availability end to end through the executor: hours and closures from Postgres,
bookings' blocked ranges, buffers, lead time, staff hours, tables, DST."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, time
from typing import Any

import pytest_asyncio
from redis.asyncio import Redis

from tests.conftest import Infra
from tests.integration.test_booking_support import Desk, Shop, StaffSpec, open_desk

CALLER = "+447700900100"


@pytest_asyncio.fixture
async def desk(infra: Infra, redis: Redis) -> AsyncIterator[Desk]:
    async for made in open_desk(infra.database_url, redis):
        yield made


async def _slots(desk: Desk, shop: Shop, **args: Any) -> dict[str, Any]:
    call_sid = await desk.call(shop, CALLER)
    ok, content = await desk.tool(call_sid, shop, "check_availability", args)
    assert ok, content
    return content


async def _book(desk: Desk, shop: Shop, start: str, **extra: Any) -> dict[str, Any]:
    call_sid = await desk.call(shop, CALLER)
    args = {"customer_name": "Ann", "phone": CALLER, "service": "Men's Haircut", "start": start}
    ok, content = await desk.tool(call_sid, shop, "book_appointment", args | extra)
    assert ok and content["status"] == "confirmed", content
    return content


async def test_lead_time_spread_and_spoken_form(desk: Desk) -> None:
    shop = await desk.shop(staff=[StaffSpec("Dave")], min_notice_min=120)
    # NOW is Monday 08:00; with two hours' notice the first slot is 10:00.
    content = await _slots(desk, shop, service="mens haircut")
    assert content["service"] == "Men's Haircut" and content["duration"] == "30 minutes"
    assert [s["start"] for s in content["slots"]] == [
        "2031-01-06T10:00",
        "2031-01-06T13:00",
        "2031-01-07T09:00",
        "2031-01-07T12:00",
        "2031-01-08T09:00",
    ]
    assert content["slots"][0]["spoken"] == "Monday 6 January at 10am"
    assert content["slots"][0]["staff"] == "Dave"
    assert "note" not in content


async def test_holiday_closure_and_fully_booked_day(desk: Desk) -> None:
    shop = await desk.shop(
        staff=[StaffSpec("Dave")],
        services=[("Men's Haircut", 240, 2500, 0)],
        closures=[(date(2031, 1, 8), date(2031, 1, 8), "Staff training", None)],
    )
    # Fill Tuesday with two four-hour appointments: 09:00-13:00 and 13:00-17:00.
    await _book(desk, shop, "2031-01-07T09:00")
    await _book(desk, shop, "2031-01-07T13:00")
    content = await _slots(desk, shop, service="Men's Haircut", date_from="2031-01-07")
    days = {s["start"][:10] for s in content["slots"]}
    assert "2031-01-07" not in days  # fully booked
    assert "2031-01-08" not in days  # closed
    assert content["slots"][0]["start"] == "2031-01-09T09:00"
    one_day = await _slots(
        desk, shop, service="Men's Haircut", date_from="2031-01-08", date_to="2031-01-08"
    )
    assert one_day["slots"] == []
    assert "no free times" in one_day["message"]
    assert one_day["next_available"][0]["start"] == "2031-01-09T09:00"


async def test_two_staff_with_different_hours_and_services(desk: Desk) -> None:
    shop = await desk.shop(
        staff=[
            StaffSpec("Alice", hours={1: [(time(9), time(12))]}),
            StaffSpec("Bob", hours={1: [(time(13), time(17))]}),
            StaffSpec("Cara", services=["Beard Trim"]),  # never does haircuts
        ],
        services=[("Men's Haircut", 30, 2500, 0), ("Beard Trim", 15, 1500, 0)],
    )
    tuesday = {"date_from": "2031-01-07", "date_to": "2031-01-07"}
    alice = await _slots(desk, shop, service="Men's Haircut", staff="alice", **tuesday)
    assert alice["slots"] and all(s["staff"] == "Alice" for s in alice["slots"])
    assert all("09:00" <= s["start"][11:] <= "11:30" for s in alice["slots"])
    bob = await _slots(desk, shop, service="Men's Haircut", staff="Bob", **tuesday)
    assert bob["slots"] and all("13:00" <= s["start"][11:] <= "16:30" for s in bob["slots"])
    anyone = await _slots(desk, shop, service="Men's Haircut", **tuesday)
    assert {s["staff"] for s in anyone["slots"]} <= {"Alice", "Bob"}
    call_sid = await desk.call(shop, CALLER)
    ok, content = await desk.tool(
        call_sid, shop, "check_availability", {"service": "Men's Haircut", "staff": "Cara"}
    )
    assert not ok and "Alice and Bob" in content["error"]


async def test_buffer_of_an_existing_booking_blocks_the_next_slot(desk: Desk) -> None:
    shop = await desk.shop(
        staff=[StaffSpec("Dave")], services=[("Men's Haircut", 30, 2500, 15)], slot_step_min=15
    )
    await _book(desk, shop, "2031-01-07T10:00")  # blocked 10:00-10:45
    morning = await desk.tool(
        await desk.call(shop, CALLER),
        shop,
        "book_appointment",
        {
            "customer_name": "Bo",
            "phone": "07700900200",
            "service": "Men's Haircut",
            "start": "2031-01-07T10:30",
        },
    )
    assert morning[0] and morning[1]["status"] == "taken"
    assert morning[1]["alternatives"]
    assert "2031-01-07T10:30" not in {a["start"] for a in morning[1]["alternatives"]}
    ok = await _book(desk, shop, "2031-01-07T10:45")
    assert ok["staff"] == "Dave"
    # 09:15 + 30 min + its own 15 min buffer ends at 10:00: fits; 09:30 would not.
    ok, too_close = await desk.tool(
        await desk.call(shop, CALLER),
        shop,
        "book_appointment",
        {
            "customer_name": "Cy",
            "phone": "07700900300",
            "service": "Men's Haircut",
            "start": "2031-01-07T09:30",
        },
    )
    assert ok and too_close["status"] == "taken"
    early = await _book(desk, shop, "2031-01-07T09:15")
    assert early["start"] == "2031-01-07T09:15"


async def test_tables_need_enough_seats(desk: Desk) -> None:
    shop = await desk.shop(
        staff=[
            StaffSpec("Table 1", kind="table", capacity=2),
            StaffSpec("Table 2", kind="table", capacity=6),
        ],
        services=[("Dinner", 90, 0, 0)],
        hours={d: [(time(17), time(23))] for d in range(7)},
    )
    small = await _slots(desk, shop, service="dinner", party_size=2)
    assert small["slots"][0]["staff"] == "Table 1"  # the best-fitting table first
    big = await _slots(desk, shop, service="dinner", party_size=5)
    assert big["slots"] and {s["staff"] for s in big["slots"]} == {"Table 2"}
    call_sid = await desk.call(shop, CALLER)
    ok, content = await desk.tool(
        call_sid, shop, "check_availability", {"service": "Dinner", "party_size": 9}
    )
    assert not ok and "6" in content["error"]


async def test_dst_weekend_offers_real_times_with_right_offsets(desk: Desk) -> None:
    # A shop open through the night on Sunday 30 March 2031 (clocks go forward at 01:00).
    shop = await desk.shop(
        staff=[StaffSpec("Night desk")],
        hours={6: [(time(0), time(4))]},
        slot_step_min=30,
        horizon_days=120,
    )
    content = await _slots(
        desk, shop, service="Men's Haircut", date_from="2031-03-30", date_to="2031-03-30"
    )
    starts = [s["start"][11:] for s in content["slots"]]
    assert starts == ["00:00", "00:30", "02:00", "02:30", "03:00"]
    booked = await _book(desk, shop, "2031-03-30T02:00")
    bookings = await desk.confirmed(shop)
    assert booked["spoken"] == "Sunday 30 March at 2am"
    assert bookings[0].starts_at.isoformat() == "2031-03-30T01:00:00+00:00"  # BST
    call_sid = await desk.call(shop, CALLER)
    ok, missing = await desk.tool(
        call_sid,
        shop,
        "book_appointment",
        {
            "customer_name": "Ann",
            "phone": CALLER,
            "service": "Men's Haircut",
            "start": "2031-03-30T01:30",
        },
    )
    assert not ok and "clocks go forward" in missing["error"]
    assert missing["alternatives"]
