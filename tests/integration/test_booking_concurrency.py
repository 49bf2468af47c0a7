"""Races on book_appointment through the real executor and Postgres: the exclusion constraint
decides who gets a slot, and one tool call id never books twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest_asyncio
from redis.asyncio import Redis

from services.tools.executor import execute
from shared.db.models import Booking, Customer, ToolInvocation
from tests.conftest import Infra
from tests.integration.test_booking_support import Desk, StaffSpec, open_desk

SLOT = "2031-01-07T10:00"  # Tuesday, well past the lead time from NOW


@pytest_asyncio.fixture
async def desk(infra: Infra, redis: Redis) -> AsyncIterator[Desk]:
    async for made in open_desk(infra.database_url, redis):
        yield made


def _booking_args(n: int) -> dict[str, object]:
    return {
        "customer_name": f"Caller {n}",
        "phone": f"+44770090{n:04d}",
        "service": "men's haircut",
        "start": SLOT,
    }


async def test_fifty_callers_race_for_one_slot_and_exactly_one_wins(desk: Desk) -> None:
    shop = await desk.shop(staff=[StaffSpec("Dave")])
    requests = []
    for n in range(50):
        call_sid = await desk.call(shop, f"+44770090{n:04d}")
        entry_id, tool_call_id = await desk.request(
            call_sid, shop, "book_appointment", _booking_args(n)
        )
        requests.append((call_sid, entry_id, tool_call_id))

    await asyncio.gather(*(execute(desk.deps, sid, entry) for sid, entry, _ in requests))

    contents = []
    for call_sid, _, tool_call_id in requests:
        (result,) = await desk.results(call_sid, tool_call_id)
        assert result.ok, result.content
        contents.append(json.loads(result.content))
    statuses = sorted(c["status"] for c in contents)
    assert statuses == ["confirmed"] + ["taken"] * 49
    for content in contents:
        if content["status"] == "taken":
            assert content["alternatives"], content
            assert SLOT not in {a["start"] for a in content["alternatives"]}
    bookings = await desk.confirmed(shop)
    assert len(bookings) == 1
    assert bookings[0].resource_id == shop.resources["Dave"]
    winner = next(c for c in contents if c["status"] == "confirmed")
    assert bookings[0].id.upper().startswith(winner["booking_id"])
    assert await desk.count(ToolInvocation, ToolInvocation.tenant_id == shop.tenant_id) == 50


async def test_one_tool_call_id_run_ten_times_at_once_books_once(desk: Desk) -> None:
    shop = await desk.shop(staff=[StaffSpec("Dave")])
    call_sid = await desk.call(shop, "+447700900777")
    entry_id, tool_call_id = await desk.request(
        call_sid, shop, "book_appointment", _booking_args(777)
    )

    await asyncio.gather(*(execute(desk.deps, call_sid, entry_id) for _ in range(10)))

    results = await desk.results(call_sid, tool_call_id)
    assert len(results) == 10
    assert {(r.ok, r.content) for r in results} == {(results[0].ok, results[0].content)}
    assert json.loads(results[0].content)["status"] == "confirmed"
    assert await desk.count(Booking, Booking.tenant_id == shop.tenant_id) == 1
    assert await desk.count(Customer, Customer.tenant_id == shop.tenant_id) == 1
    assert await desk.count(ToolInvocation, ToolInvocation.tool_call_id == tool_call_id) == 1

    # A later redelivery of the same request returns the stored first result, not "taken".
    await execute(desk.deps, call_sid, entry_id)
    again = await desk.results(call_sid, tool_call_id)
    assert len(again) == 11 and again[-1].content == results[0].content
