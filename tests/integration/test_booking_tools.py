"""The booking tools through the executor: bad input becomes a sayable error, and a caller only
ever sees or changes bookings made under their own number."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from sqlalchemy import select

from services.tools.handlers.my_bookings import NOT_FOUND
from shared.db.models import Booking, Customer, Message, ToolInvocation
from tests.conftest import Infra
from tests.integration.test_booking_support import Desk, Shop, StaffSpec, open_desk

ANN = "+447700900501"
BEN = "+447700900502"


@pytest_asyncio.fixture
async def desk(infra: Infra, redis: Redis) -> AsyncIterator[Desk]:
    async for made in open_desk(infra.database_url, redis):
        yield made


@pytest_asyncio.fixture
async def shop(desk: Desk) -> Shop:
    return await desk.shop(
        staff=[StaffSpec("Dave"), StaffSpec("Sam")],
        services=[("Men's Haircut", 30, 2500, 0), ("Beard Trim", 15, 750, 5)],
        closures=[(date(2031, 1, 10), date(2031, 1, 10), "Bank holiday", None)],
    )


def book_args(start: str = "2031-01-07T10:00", **extra: Any) -> dict[str, Any]:
    return {
        "customer_name": "Ann",
        "phone": "07700 900501",
        "service": "Men's Haircut",
        "start": start,
    } | extra


async def test_list_services_and_business_info(desk: Desk, shop: Shop) -> None:
    call_sid = await desk.call(shop, ANN)
    ok, content = await desk.tool(call_sid, shop, "list_services", {})
    assert ok
    assert content["services"] == [
        {"name": "Beard Trim", "price": "£7.50", "duration": "15 minutes"},
        {"name": "Men's Haircut", "price": "£25", "duration": "30 minutes"},
    ]
    ok, info = await desk.tool(call_sid, shop, "get_business_info", {})
    assert ok and info["address"] == "1 Test Street" and info["timezone"] == "Europe/London"


async def test_booking_normalises_the_phone_and_upserts_the_customer(
    desk: Desk, shop: Shop
) -> None:
    call_sid = await desk.call(shop, ANN)
    ok, first = await desk.tool(call_sid, shop, "book_appointment", book_args(staff="sam"))
    assert ok and first["status"] == "confirmed", first
    assert first["staff"] == "Sam" and first["spoken"] == "Tuesday 7 January at 10am"
    assert len(first["booking_id"]) == 6
    ok, second = await desk.tool(
        call_sid, shop, "book_appointment", book_args("2031-01-07T10:00", customer_name="Ann B")
    )
    assert ok and second["status"] == "confirmed" and second["staff"] == "Dave"  # Sam is busy
    async with desk.sessions() as session:
        customers = list(
            await session.scalars(select(Customer).where(Customer.tenant_id == shop.tenant_id))
        )
    assert [(c.phone, c.name) for c in customers] == [(ANN, "Ann B")]
    ok, third = await desk.tool(call_sid, shop, "book_appointment", book_args())
    # Both staff are busy, but with Ann herself: she gets her (first) booking back, not "taken".
    assert ok and third["status"] == "confirmed" and third["already_booked"] is True
    assert third["booking_id"] == first["booking_id"]
    ok, fourth = await desk.tool(call_sid, shop, "book_appointment", book_args(phone=BEN))
    assert ok and fourth["status"] == "taken" and fourth["alternatives"]


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("book_appointment", book_args(service="Perm"), "Beard Trim and Men's Haircut"),
        ("check_availability", {"service": "Perm"}, "We don't offer 'Perm'"),
        ("book_appointment", book_args(staff="Zed"), "You can book with Dave and Sam"),
        ("book_appointment", book_args(phone="call me maybe"), "phone number doesn't look right"),
        ("book_appointment", book_args(phone="12345"), "phone number doesn't look right"),
        ("book_appointment", book_args(start="next tuesday"), "not a date and time"),
        ("book_appointment", book_args(start="2031-01-07"), "no time of day"),
        ("book_appointment", {"service": "Men's Haircut"}, "customer_name is missing"),
        ("book_appointment", book_args(colour="red"), "colour is not something I can use"),
        ("check_availability", {"service": "Men's Haircut", "date_from": "soon"}, "not a date"),
        ("take_message", {"caller_name": " ", "message": "hi"}, "caller_name"),
        ("teleport", {}, "I can't do 'teleport' here."),
        ("book_appointment", "{not json", "garbled"),
        ("book_appointment", "[1, 2]", "garbled"),
    ],
)
async def test_bad_input_is_a_sayable_error(
    desk: Desk, shop: Shop, name: str, arguments: dict[str, Any] | str, expected: str
) -> None:
    call_sid = await desk.call(shop, ANN)
    ok, content = await desk.tool(call_sid, shop, name, arguments)
    assert not ok
    assert expected in content["error"], content
    assert await desk.count(Booking, Booking.tenant_id == shop.tenant_id) == 0


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("2031-01-03T10:00", "has already passed"),
        ("2031-01-06T08:30", "too soon; we need at least 1 hour notice"),
        ("2031-01-07T18:00", "outside our opening hours"),
        ("2031-01-07T16:45", "outside our opening hours"),  # would end after closing
        ("2031-01-11T10:00", "outside our opening hours"),  # Saturday
        ("2031-01-10T10:00", "closed on Friday 10 January (Bank holiday)"),
        ("2031-06-01T10:00", "too far ahead"),
    ],
)
async def test_unbookable_times_are_errors_with_alternatives(
    desk: Desk, shop: Shop, start: str, expected: str
) -> None:
    call_sid = await desk.call(shop, ANN)
    ok, content = await desk.tool(call_sid, shop, "book_appointment", book_args(start))
    assert not ok
    assert expected in content["error"], content
    assert content["alternatives"], content
    assert all(a["start"] >= "2031-01-06T09:00" for a in content["alternatives"])
    assert not any(a["start"].startswith("2031-01-10") for a in content["alternatives"])
    assert await desk.count(Booking, Booking.tenant_id == shop.tenant_id) == 0


async def test_bookings_are_scoped_to_the_callers_number(desk: Desk, shop: Shop) -> None:
    ann_call = await desk.call(shop, "07700 900501")  # From in national form still matches
    ok, booked = await desk.tool(ann_call, shop, "book_appointment", book_args())
    assert ok and booked["status"] == "confirmed"
    ref = booked["booking_id"]

    ben_call = await desk.call(shop, BEN)
    ok, bens = await desk.tool(ben_call, shop, "find_my_bookings", {})
    assert ok and bens["bookings"] == [] and "can't see any" in bens["message"]
    for name, args in [
        ("cancel_appointment", {"booking_id": ref}),
        ("reschedule_appointment", {"booking_id": ref, "new_start": "2031-01-08T11:00"}),
        ("cancel_appointment", {"booking_id": "zzzzzz"}),
        ("cancel_appointment", {"booking_id": ref[:3]}),
    ]:
        ok, content = await desk.tool(ben_call, shop, name, args)
        assert not ok and content == {"error": NOT_FOUND}, (name, content)
    ok, content = await desk.tool(ann_call, shop, "cancel_appointment", {"booking_id": ref[:3]})
    assert not ok and content == {"error": NOT_FOUND}  # too short to be a reference
    (still,) = await desk.confirmed(shop)
    assert still.id.upper().startswith(ref)

    ok, anns = await desk.tool(ann_call, shop, "find_my_bookings", {})
    assert ok and [b["booking_id"] for b in anns["bookings"]] == [ref]
    assert anns["bookings"][0]["spoken"] == "Tuesday 7 January at 10am"


async def test_reschedule_and_cancel_own_booking(desk: Desk, shop: Shop) -> None:
    ann_call = await desk.call(shop, ANN)
    ben_call = await desk.call(shop, BEN)
    ok, mine = await desk.tool(ann_call, shop, "book_appointment", book_args(staff="Dave"))
    assert ok and mine["status"] == "confirmed"
    ben_args = book_args("2031-01-08T11:00", staff="Dave", phone=BEN, customer_name="Ben")
    ok, bens = await desk.tool(ben_call, shop, "book_appointment", ben_args)
    assert ok and bens["status"] == "confirmed"

    # Onto Ben's time with Dave: taken, alternatives, and Ann's booking is untouched.
    ok, clash = await desk.tool(
        ann_call,
        shop,
        "reschedule_appointment",
        {
            "booking_id": mine["booking_id"].lower(),
            "new_start": "2031-01-08T11:00",
            "staff": "Dave",
        },
    )
    assert ok and clash["status"] == "taken" and clash["alternatives"]
    assert {b.starts_at.isoformat() for b in await desk.confirmed(shop)} == {
        "2031-01-07T10:00:00+00:00",
        "2031-01-08T11:00:00+00:00",
    }

    # Fifteen minutes later than itself: its own old time does not block it.
    ok, moved = await desk.tool(
        ann_call,
        shop,
        "reschedule_appointment",
        {"booking_id": mine["booking_id"], "new_start": "2031-01-07T10:15"},
    )
    assert ok and moved["status"] == "rescheduled", moved
    assert moved["staff"] == "Dave" and moved["previous_booking_id"] == mine["booking_id"]
    async with desk.sessions() as session:
        statuses = await session.scalars(
            select(Booking.status)
            .join(Customer, Customer.id == Booking.customer_id)
            .where(Booking.tenant_id == shop.tenant_id, Customer.phone == ANN)
        )
        ann_statuses = sorted(statuses)
    assert ann_statuses == ["confirmed", "rescheduled"]

    ok, cancelled = await desk.tool(
        ann_call, shop, "cancel_appointment", {"booking_id": f" {moved['booking_id']} "}
    )
    assert ok and cancelled["status"] == "cancelled"
    ok, again = await desk.tool(
        ann_call, shop, "cancel_appointment", {"booking_id": moved["booking_id"]}
    )
    assert not ok and again == {"error": NOT_FOUND}
    ok, anns = await desk.tool(ann_call, shop, "find_my_bookings", {})
    assert ok and anns["bookings"] == []
    (left,) = await desk.confirmed(shop)  # Ben's booking is untouched
    assert left.starts_at.isoformat() == "2031-01-08T11:00:00+00:00"


async def test_withheld_number_cannot_look_up_bookings(desk: Desk, shop: Shop) -> None:
    hidden = await desk.call(shop, "anonymous")
    ok, content = await desk.tool(hidden, shop, "find_my_bookings", {})
    assert not ok and "can't see your number" in content["error"]


async def test_take_message(desk: Desk, shop: Shop) -> None:
    call_sid = await desk.call(shop, ANN)
    ok, saved = await desk.tool(
        call_sid, shop, "take_message", {"caller_name": "Ann", "message": "Call me re: prices"}
    )
    assert ok and saved["callback_number"] == ANN
    ok, other = await desk.tool(
        call_sid,
        shop,
        "take_message",
        {"caller_name": "Ann", "message": "Or my office", "callback_number": "020 7946 0018"},
    )
    assert ok and other["callback_number"] == "+442079460018"
    async with desk.sessions() as session:
        rows = (
            await session.execute(
                select(Message.caller_phone, Message.body, Message.call_sid)
                .where(Message.tenant_id == shop.tenant_id)
                .order_by(Message.created_at, Message.body)
            )
        ).all()
    assert {(r.caller_phone, r.body, r.call_sid) for r in rows} == {
        (ANN, "Call me re: prices", call_sid),
        ("+442079460018", "Or my office", call_sid),
    }
    stored = await desk.count(ToolInvocation, ToolInvocation.call_sid == call_sid)
    assert stored == 2
