"""Three phone calls through the whole platform: one books, the next reschedules, the last
cancels. Asserted in Postgres and in a real CalDAV server (Radicale) the business's staff
calendar is connected to."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.engine import make_engine, make_sessions
from shared.db.models import Booking, CalendarConnection, Resource, Tenant
from sim.twilio_caller import CallScript, place_call
from tests.calendar_servers import RadicaleServer
from tests.conftest import Platform
from tests.e2e.test_call_end_to_end import caller_options, wait_for_record

pytestmark = pytest.mark.e2e

LONDON = ZoneInfo("Europe/London")
CLOSED = [(date(2026, 12, 24), date(2026, 12, 28)), (date(2027, 1, 1), date(2027, 1, 1))]
CALLER = "+447700900123"


def next_open_weekday(today: date) -> date:
    """The first Monday-Friday at least two days ahead that Dave's Barbershop is open."""
    day = today + timedelta(days=2)
    while day.weekday() >= 5 or any(a <= day <= b for a, b in CLOSED):
        day += timedelta(days=1)
    return day


def policy(rule: dict[str, Any], after: dict[str, str]) -> dict[str, Any]:
    return {
        "rules": [rule, {"match": r"\b(bye|thanks)\b", "reply": "You're welcome. Goodbye!"}],
        "after_tool": "Done.",
        "after_tools": after,
        "fallback": "Sorry, could you say that again?",
    }


@pytest.fixture
def llm(platform: Platform) -> Iterator[httpx.Client]:
    port = platform.env["OPENAI_BASE_URL"].rsplit(":", 1)[1].split("/")[0]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        yield client
        # restore the demo policy for the other tests
        from sim.llm_policy import load_policy

        restored = load_policy("sim/policies/daves_barbershop.yaml").model_dump()
        client.post("/sim/policy", json=restored).raise_for_status()


@pytest_asyncio.fixture
async def sessions(platform: Platform) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(platform.infra.database_url)
    yield make_sessions(engine)
    await engine.dispose()


@pytest_asyncio.fixture
async def daves_caldav(
    sessions: async_sessionmaker[AsyncSession], radicale_server: RadicaleServer
) -> AsyncIterator[str]:
    """Dave's own calendar lives on a CalDAV server (a fresh collection per test)."""
    url = radicale_server.new_calendar()
    async with sessions() as session:
        tenant = (
            await session.scalars(select(Tenant).where(Tenant.slug == "daves-barbershop"))
        ).one()
        dave = (
            await session.scalars(
                select(Resource).where(Resource.tenant_id == tenant.id, Resource.name == "Dave")
            )
        ).one()
        connection = CalendarConnection(
            tenant_id=tenant.id,
            resource_id=dave.id,
            kind="caldav",
            timeout_ms=5000,
            config={
                "calendar_url": url,
                "username": radicale_server.username,
                "password": radicale_server.password,
            },
        )
        session.add(connection)
        await session.commit()
        connection_id = connection.id
    yield url
    async with sessions() as session:
        await session.execute(
            delete(CalendarConnection).where(CalendarConnection.id == connection_id)
        )
        await session.commit()


async def call(platform: Platform, line: str) -> str:
    options = caller_options(platform)
    result = await place_call(options, CallScript(lines=[line, "Great, thanks, bye."]))
    assert result.error is None, result.error
    await wait_for_record(platform.infra.database_url, result.call_sid)
    return result.call_sid


async def bookings_of(sessions: async_sessionmaker[AsyncSession], sids: list[str]) -> list[Booking]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Booking).where(Booking.call_sid.in_(sids)).order_by(Booking.created_at)
        )
        return list(rows)


def caldav_event(server: RadicaleServer, href: str) -> str | None:
    """The event's iCalendar text, or None once it is gone (hrefs may be server-relative)."""
    with server.client() as client:
        response = client.get(str(httpx.URL(server.base_url).join(href)))
    return response.text if response.status_code == 200 else None


async def test_book_then_reschedule_then_cancel(
    platform: Platform,
    llm: httpx.Client,
    sessions: async_sessionmaker[AsyncSession],
    daves_caldav: str,
    radicale_server: RadicaleServer,
) -> None:
    day = next_open_weekday(datetime.now(LONDON).date())
    first = datetime.combine(day, time(10, 0), LONDON)
    moved = datetime.combine(day, time(15, 0), LONDON)

    # --- call 1: book ------------------------------------------------------------------------
    llm.post(
        "/sim/policy",
        json=policy(
            {
                "match": "book",
                "tool_call": {
                    "name": "book_appointment",
                    "arguments": {
                        "customer_name": "Alice Smith",
                        "phone": CALLER,
                        "service": "Men's Haircut",
                        "start": first.strftime("%Y-%m-%dT%H:%M"),
                        "staff": "Dave",
                    },
                },
            },
            {"book_appointment": "You're booked in with Dave. See you then!"},
        ),
    ).raise_for_status()
    sid1 = await call(platform, "I'd like to book a haircut with Dave")
    [booked] = await bookings_of(sessions, [sid1])
    assert booked.status == "confirmed" and booked.starts_at == first
    assert booked.ends_at == first + timedelta(minutes=30)
    [href1] = list(booked.external_refs.values())
    event = caldav_event(radicale_server, href1)
    assert event is not None and first.astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%M") in event

    # --- call 2: reschedule (same caller, a new call) -----------------------------------------
    llm.post(
        "/sim/policy",
        json=policy(
            {
                "match": "move",
                "tool_call": {
                    "name": "reschedule_appointment",
                    "arguments": {
                        "booking_id": booked.id[:6],
                        "new_start": moved.strftime("%Y-%m-%dT%H:%M"),
                    },
                },
            },
            {"reschedule_appointment": "Done, I've moved it to three o'clock."},
        ),
    ).raise_for_status()
    sid2 = await call(platform, "Can I move my appointment to the afternoon")
    async with sessions() as session:
        old = await session.get(Booking, booked.id)
    assert old is not None and old.status == "rescheduled"
    [new] = await bookings_of(sessions, [sid2])
    assert new.status == "confirmed" and new.starts_at == moved and new.id != booked.id
    assert caldav_event(radicale_server, href1) is None  # the old event left the calendar
    [href2] = list(new.external_refs.values())
    assert caldav_event(radicale_server, href2) is not None

    # --- call 3: cancel -----------------------------------------------------------------------
    llm.post(
        "/sim/policy",
        json=policy(
            {
                "match": "cancel",
                "tool_call": {
                    "name": "cancel_appointment",
                    "arguments": {"booking_id": new.id[:6]},
                },
            },
            {"cancel_appointment": "Your appointment is cancelled."},
        ),
    ).raise_for_status()
    await call(platform, "Actually please cancel my appointment")
    async with sessions() as session:
        cancelled = await session.get(Booking, new.id)
    assert cancelled is not None and cancelled.status == "cancelled"
    assert caldav_event(radicale_server, href2) is None
