"""Google Calendar connector against the Google Calendar simulator over real sockets, with
connections and bookings in the real test database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tools import calendars
from tests.calendar_servers import (
    GoogleCalendarSim,
    add_booking,
    add_connection,
    seed_shop,
)

Sessions = async_sessionmaker[AsyncSession]

DAY = datetime(2027, 6, 10, tzinfo=UTC)
WINDOW = (DAY, DAY + timedelta(days=1))


def _config(sim: GoogleCalendarSim, calendar_id: str, **extra: str) -> dict[str, Any]:
    return {
        "base_url": sim.base_url,
        "calendar_id": calendar_id,
        "access_token": sim.token,
        **extra,
    }


def _at(hour: int, minute: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


def _seed_busy(
    sim: GoogleCalendarSim, calendar_id: str, *blocks: tuple[datetime, datetime]
) -> None:
    body = [{"start": s.isoformat(), "end": e.isoformat()} for s, e in blocks]
    httpx.post(f"{sim.base_url}/sim/calendars/{calendar_id}/busy", json=body).raise_for_status()


def _events(sim: GoogleCalendarSim, calendar_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{sim.base_url}/sim/calendars/{calendar_id}/events")
    response.raise_for_status()
    events: list[dict[str, Any]] = response.json()
    return events


async def test_busy_time_lands_on_the_right_resources(
    calendar_sessions: Sessions, google_calendar_sim: GoogleCalendarSim
) -> None:
    sim = google_calendar_sim
    daves, shops = sim.new_calendar(), sim.new_calendar()
    _seed_busy(sim, daves, (_at(9), _at(10)), (_at(9, 30), _at(10, 30)), (_at(15), _at(16)))
    # A block that only partly overlaps the window comes back clipped to it.
    _seed_busy(sim, shops, (_at(12), _at(13)), (DAY - timedelta(hours=2), _at(1)))
    async with calendar_sessions() as session:
        shop = await seed_shop(session)
        await add_connection(session, shop, "google", _config(sim, daves), shop.dave)
        await add_connection(session, shop, "google", _config(sim, shops), None)
        result = await calendars.busy_intervals(
            session, shop.tenant_id, [shop.dave, shop.bob], *WINDOW
        )
    assert result.warnings == []
    assert result.busy == {
        shop.dave: [(DAY, _at(1)), (_at(9), _at(10, 30)), (_at(12), _at(13)), (_at(15), _at(16))],
        shop.bob: [(DAY, _at(1)), (_at(12), _at(13))],
    }


async def test_push_then_remove_booking(
    calendar_sessions: Sessions, google_calendar_sim: GoogleCalendarSim
) -> None:
    sim = google_calendar_sim
    daves, shops = sim.new_calendar(), sim.new_calendar()
    async with calendar_sessions() as session:
        shop = await seed_shop(session)
        dave_conn = await add_connection(session, shop, "google", _config(sim, daves), shop.dave)
        shop_conn = await add_connection(session, shop, "google", _config(sim, shops), None)
        booking = await add_booking(session, shop, shop.dave, _at(11))

        refs = await calendars.push_booking(session, booking)
        await session.commit()
        assert set(refs) == {dave_conn.id, shop_conn.id}
        assert booking.external_refs == refs

        [event] = _events(sim, daves)
        assert event["id"] == refs[dave_conn.id] and event["status"] == "confirmed"
        assert event["summary"] == "Haircut – Sam Jones"
        assert "+447700900123" in event["description"] and "Skin fade" in event["description"]
        assert event["start"] == {
            "dateTime": "2027-06-10T12:00:00+01:00",
            "timeZone": "Europe/London",
        }
        assert event["end"]["dateTime"] == "2027-06-10T12:30:00+01:00"
        assert event["transparency"] == "opaque"
        [shared_event] = _events(sim, shops)
        assert shared_event["transparency"] == "transparent"

        # Dave's own calendar now shows the booking; the business-wide copy blocks nobody.
        busy = await calendars.busy_intervals(
            session, shop.tenant_id, [shop.dave, shop.bob], *WINDOW
        )
        assert busy.busy == {shop.dave: [(_at(11), _at(11, 30))], shop.bob: []}

        # Pushing again after a lost reply (refs forgotten) finds the same events.
        booking.external_refs = {}
        assert await calendars.push_booking(session, booking) == refs
        assert len(_events(sim, daves)) == 1

        warnings = await calendars.remove_booking(session, booking)
        await session.commit()
    assert warnings == []
    assert booking.external_refs == {}
    assert [e["status"] for e in _events(sim, daves) + _events(sim, shops)] == [
        "cancelled",
        "cancelled",
    ]


async def test_slow_dead_and_unauthorised_calendars_become_warnings(
    calendar_sessions: Sessions, google_calendar_sim: GoogleCalendarSim, refused_url: str
) -> None:
    sim = google_calendar_sim
    fast = sim.new_calendar()
    slow = sim.new_calendar(latency_ms=20_000)
    _seed_busy(sim, fast, (_at(9), _at(10)))
    async with calendar_sessions() as session:
        shop = await seed_shop(session)
        await add_connection(session, shop, "google", _config(sim, fast), shop.bob)
        await add_connection(session, shop, "google", _config(sim, slow), shop.dave, timeout_ms=300)
        await add_connection(
            session, shop, "google", _config(sim, fast, base_url=refused_url), None, timeout_ms=300
        )
        await add_connection(
            session, shop, "google", _config(sim, fast, access_token="expired"), None
        )
        # The slow calendar answers after 20 s; the 300 ms time box must end the wait long
        # before that (10 s is only a bound for a broken time box, not a measurement).
        result = await asyncio.wait_for(
            calendars.busy_intervals(session, shop.tenant_id, [shop.dave, shop.bob], *WINDOW),
            timeout=10,
        )
    assert result.busy == {shop.dave: [], shop.bob: [(_at(9), _at(10))]}
    assert sorted(result.warnings) == [
        "I couldn't check Dave's Google calendar just now, so this time isn't confirmed against it",
        "I couldn't check the business's Google calendar just now, "
        "so this time isn't confirmed against it",
        "I couldn't check the business's Google calendar just now, "
        "so this time isn't confirmed against it",
    ]


async def test_unreachable_calendar_on_push_and_remove(
    calendar_sessions: Sessions, google_calendar_sim: GoogleCalendarSim, refused_url: str
) -> None:
    sim = google_calendar_sim
    daves, missing = sim.new_calendar(), "no-such-calendar@group.calendar.google.com"
    async with calendar_sessions() as session:
        shop = await seed_shop(session)
        good = await add_connection(session, shop, "google", _config(sim, daves), shop.dave)
        await add_connection(
            session, shop, "google", _config(sim, daves, base_url=refused_url), None, timeout_ms=300
        )
        await add_connection(session, shop, "google", _config(sim, missing), None)
        booking = await add_booking(session, shop, shop.dave, _at(14))
        refs = await calendars.push_booking(session, booking)
        assert list(refs) == [good.id]

        dead = await add_connection(
            session,
            shop,
            "google",
            _config(sim, daves, base_url=refused_url),
            shop.dave,
            timeout_ms=300,
        )
        booking.external_refs = {**refs, dead.id: "fdgone"}
        warnings = await calendars.remove_booking(session, booking)
    assert warnings == [
        "I couldn't remove this booking from Dave's Google calendar just now, "
        "so it may still show there"
    ]
    # The failed ref stays for a retry; the removed one is gone.
    assert booking.external_refs == {dead.id: "fdgone"}
    assert [e["status"] for e in _events(sim, daves)] == ["cancelled"]
