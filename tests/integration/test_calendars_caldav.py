"""CalDAV connector against a real Radicale server (and a server that only answers 500) over
real sockets, with connections and bookings in the real test database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tools import calendars
from services.tools.calendars.ical import event_interval, parse_events
from tests.calendar_servers import RadicaleServer, add_booking, add_connection, seed_shop

Sessions = async_sessionmaker[AsyncSession]

DAY = datetime(2027, 6, 10, tzinfo=UTC)
WINDOW = (DAY, DAY + timedelta(days=2))
LONDON = ZoneInfo("Europe/London")

LONDON_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/London
BEGIN:STANDARD
DTSTART:19701025T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T010000
TZOFFSETFROM:+0000
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
END:VTIMEZONE
"""


def _at(hour: int, minute: int = 0, day: int = 10) -> datetime:
    return datetime(2027, 6, day, hour, minute, tzinfo=UTC)


def _put_event(server: RadicaleServer, calendar_url: str, uid: str, lines: str) -> None:
    body = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//FrontDesk tests//EN\n"
        + (LONDON_VTIMEZONE if "TZID=Europe/London" in lines else "")
        + f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20270101T000000Z\n{lines.strip()}\n"
        + "END:VEVENT\nEND:VCALENDAR\n"
    ).replace("\n", "\r\n")
    with server.client() as http:
        response = http.put(
            f"{calendar_url}{uid}.ics",
            content=body.encode(),
            headers={"Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"},
        )
    assert response.status_code == 201, response.text


def _config(server: RadicaleServer, calendar_url: str, **extra: str) -> dict[str, Any]:
    return {
        "calendar_url": calendar_url,
        "username": server.username,
        "password": server.password,
        **extra,
    }


async def test_busy_time_in_every_date_form(
    calendar_sessions: Sessions, radicale_server: RadicaleServer
) -> None:
    server = radicale_server
    daves, shops = server.new_calendar(), server.new_calendar()
    _put_event(server, daves, "utc", "DTSTART:20270610T090000Z\nDTEND:20270610T100000Z")
    _put_event(
        server,
        daves,
        "tzid",  # 14:00 BST = 13:00 UTC
        "DTSTART;TZID=Europe/London:20270610T140000\nDTEND;TZID=Europe/London:20270610T150000",
    )
    _put_event(server, daves, "duration", "DTSTART:20270610T160000Z\nDURATION:PT45M")
    _put_event(
        server,
        daves,
        "floating",  # no zone: the business's (London) time
        "DTSTART:20270610T190000\nDTEND:20270610T193000",
    )
    _put_event(
        server,
        daves,
        "daily",  # expanded by the server: one instance per day
        "DTSTART:20270601T070000Z\nDURATION:PT30M\nRRULE:FREQ=DAILY;COUNT=30",
    )
    _put_event(
        server,
        daves,
        "free",
        "DTSTART:20270610T170000Z\nDTEND:20270610T180000Z\nTRANSP:TRANSPARENT",
    )
    _put_event(
        server,
        daves,
        "cancelled",
        "DTSTART:20270610T200000Z\nDTEND:20270610T210000Z\nSTATUS:CANCELLED",
    )
    _put_event(server, daves, "elsewhen", "DTSTART:20270620T090000Z\nDTEND:20270620T100000Z")
    # All day on the 11th in London: 23:00 UTC on the 10th to 23:00 UTC on the 11th.
    _put_event(server, shops, "allday", "DTSTART;VALUE=DATE:20270611\nDTEND;VALUE=DATE:20270612")
    async with calendar_sessions() as session:
        shop = await seed_shop(session, timezone="Europe/London")
        await add_connection(session, shop, "caldav", _config(server, daves), shop.dave)
        await add_connection(session, shop, "caldav", _config(server, shops), None)
        result = await calendars.busy_intervals(
            session, shop.tenant_id, [shop.dave, shop.bob], *WINDOW
        )
    all_day = (_at(23), _at(23, day=11))
    assert result.warnings == []
    assert result.busy == {
        shop.dave: [
            (_at(7), _at(7, 30)),
            (_at(9), _at(10)),
            (_at(13), _at(14)),
            (_at(16), _at(16, 45)),
            (_at(18), _at(18, 30)),
            (all_day[0], _at(23, day=11)),  # the 11th's 07:00 instance is inside the day
        ],
        shop.bob: [all_day],
    }


async def test_push_then_remove_booking(
    calendar_sessions: Sessions, radicale_server: RadicaleServer
) -> None:
    server = radicale_server
    daves = server.new_calendar()
    async with calendar_sessions() as session:
        shop = await seed_shop(session)
        connection = await add_connection(
            session, shop, "caldav", _config(server, daves), shop.dave
        )
        booking = await add_booking(session, shop, shop.dave, _at(11))
        refs = await calendars.push_booking(session, booking)
        await session.commit()
        href = refs[connection.id]
        assert href.startswith("/dave/") and href.endswith(".ics")
        with server.client() as http:
            fetched = http.get(f"{server.base_url}{href}")
        assert fetched.status_code == 200
        [event] = parse_events(fetched.text)
        assert event_interval(event, LONDON) == (_at(11), _at(11, 30))
        assert event.props["SUMMARY"].value == "Haircut – Sam Jones"
        assert event.props["X-FRONTDESK-BOOKING"].value == booking.id

        # Our own event is not counted again as busy time (the booking already is).
        busy = await calendars.busy_intervals(session, shop.tenant_id, [shop.dave], *WINDOW)
        assert busy.busy == {shop.dave: []} and busy.warnings == []

        booking.external_refs = {}  # a retry after a lost reply finds the same event (412)
        assert await calendars.push_booking(session, booking) == refs

        warnings = await calendars.remove_booking(session, booking)
        await session.commit()
        with server.client() as http:
            assert http.get(f"{server.base_url}{href}").status_code == 404
    assert warnings == []
    assert booking.external_refs == {}


async def test_failing_servers_become_warnings(
    calendar_sessions: Sessions,
    radicale_server: RadicaleServer,
    failing_http_server: str,
    refused_url: str,
) -> None:
    server = radicale_server
    async with calendar_sessions() as session:
        shop = await seed_shop(session)
        await add_connection(
            session, shop, "caldav", {"calendar_url": f"{failing_http_server}/dave/cal/"}, shop.dave
        )
        await add_connection(
            session,
            shop,
            "caldav",
            {"calendar_url": f"{refused_url}/dave/cal/"},
            shop.bob,
            timeout_ms=300,
        )
        await add_connection(
            session, shop, "caldav", _config(server, server.calendar_url, password="wrong"), None
        )
        await add_connection(session, shop, "caldav", {"username": "no url"}, None)
        result = await asyncio.wait_for(
            calendars.busy_intervals(session, shop.tenant_id, [shop.dave, shop.bob], *WINDOW),
            timeout=10,
        )
        assert result.busy == {shop.dave: [], shop.bob: []}
        assert sorted(result.warnings) == [
            "I couldn't check Bob's calendar just now, so this time isn't confirmed against it",
            "I couldn't check Dave's calendar just now, so this time isn't confirmed against it",
            "I couldn't check the business's calendar just now, "
            "so this time isn't confirmed against it",
            "I couldn't check the business's calendar just now, "
            "so this time isn't confirmed against it",
        ]
        booking = await add_booking(session, shop, shop.dave, _at(12))
        assert await calendars.push_booking(session, booking) == {}
        assert booking.external_refs == {}


def test_ical_parser_reads_folded_quoted_and_unknown_zone_forms() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n"
        'DTSTART;TZID="America/New_York":20270610T090000\r\n'
        "DTEND;TZID=America/New_York:2027061\r\n 0T101500\r\n"  # folded mid-value
        "SUMMARY:a\\, b\r\nBEGIN:VALARM\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"
        "END:VEVENT\r\nBEGIN:VEVENT\r\nUID:y\r\n"
        "DTSTART;TZID=W. Europe Standard Time:20270610T090000\r\nDURATION:P1DT2H\r\n"
        "END:VEVENT\r\nBEGIN:VEVENT\r\nUID:z\r\nDTSTART;VALUE=DATE:20271225\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    first, second, third = parse_events(text)
    assert event_interval(first, LONDON) == (_at(13), _at(14, 15))
    # A zone name Python does not know falls back to the business's zone (London, BST).
    assert event_interval(second, LONDON) == (_at(8), _at(10, day=11))
    # A DATE start without an end lasts one local day (GMT in December).
    assert event_interval(third, LONDON) == (
        datetime(2027, 12, 25, tzinfo=UTC),
        datetime(2027, 12, 26, tzinfo=UTC),
    )
