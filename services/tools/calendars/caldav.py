"""CalDAV (RFC 4791) over httpx: busy time from a calendar-query REPORT, bookings written with
PUT and removed with DELETE.

Config keys: `calendar_url` (the calendar collection), `username` and `password` (HTTP basic
auth, optional). Recurring events are asked for expanded (`C:expand`) so the server returns one
instance per occurrence; a server that ignores that is reported as failed rather than trusted
(an unexpanded series would hide occurrences). Events FrontDesk wrote itself are skipped:
those bookings are already busy in our own database.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from services.tools.calendars.ical import (
    build_calendar,
    event_interval,
    is_own_event,
    is_unexpanded_recurrence,
    parse_events,
)
from services.tools.calendars.model import (
    CalendarError,
    EventDraft,
    Interval,
    optional_text,
    required_text,
)

_DAV = "{DAV:}"
_CALDAV = "{urn:ietf:params:xml:ns:caldav}"

_QUERY = """<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop>
    <D:getetag/>
    <C:calendar-data><C:expand start="{start}" end="{end}"/></C:calendar-data>
  </D:prop>
  <C:filter>
    <C:comp-filter name="VCALENDAR">
      <C:comp-filter name="VEVENT"><C:time-range start="{start}" end="{end}"/></C:comp-filter>
    </C:comp-filter>
  </C:filter>
</C:calendar-query>
"""


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar_data(multistatus: bytes) -> list[str]:
    """The calendar-data texts of the 200 propstats of a 207 Multi-Status body."""
    try:
        root = ET.fromstring(multistatus)
    except ET.ParseError as exc:
        raise CalendarError(f"REPORT answered with malformed XML ({exc})") from exc
    if root.tag != f"{_DAV}multistatus":
        raise CalendarError(f"REPORT answered with <{root.tag}>, not a multistatus")
    texts: list[str] = []
    for propstat in root.iter(f"{_DAV}propstat"):
        status = propstat.findtext(f"{_DAV}status", default="")
        if " 200 " not in f"{status} ":
            continue
        for data in propstat.iter(f"{_CALDAV}calendar-data"):
            if data.text:
                texts.append(data.text)
    return texts


class CalDavCalendar:
    """One CalDAV calendar collection."""

    def __init__(self, http: httpx.AsyncClient, config: dict[str, Any], local: tzinfo) -> None:
        url = required_text(config, "calendar_url")
        if urlsplit(url).scheme not in ("http", "https"):
            raise CalendarError("calendar_url must be an http(s) URL")
        self.http = http
        self.calendar_url = url if url.endswith("/") else url + "/"
        self.local = local
        username = optional_text(config, "username")
        password = optional_text(config, "password")
        self.auth = httpx.BasicAuth(username, password) if username else None

    async def busy(self, start: datetime, end: datetime) -> list[Interval]:
        body = _QUERY.format(start=_stamp(start), end=_stamp(end))
        response = await self.http.request(
            "REPORT",
            self.calendar_url,
            content=body.encode(),
            headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
            auth=self.auth or httpx.USE_CLIENT_DEFAULT,
        )
        if response.status_code != 207:
            raise CalendarError(f"REPORT answered HTTP {response.status_code}")
        intervals: list[Interval] = []
        for text in calendar_data(response.content):
            for event in parse_events(text):
                if is_own_event(event):
                    continue
                if is_unexpanded_recurrence(event):
                    raise CalendarError("server did not expand recurring events")
                interval = event_interval(event, self.local)
                if interval is not None and interval[0] < end and interval[1] > start:
                    intervals.append(interval)
        return intervals

    async def create(self, draft: EventDraft) -> str:
        target = urljoin(self.calendar_url, f"{draft.key}.ics")
        response = await self.http.put(
            target,
            content=build_calendar(draft, datetime.now(UTC)).encode(),
            headers={"If-None-Match": "*", "Content-Type": "text/calendar; charset=utf-8"},
            auth=self.auth or httpx.USE_CLIENT_DEFAULT,
        )
        # 412: the resource exists, i.e. an earlier attempt of this same draft got through.
        if response.status_code not in (200, 201, 204, 412):
            raise CalendarError(f"PUT answered HTTP {response.status_code}")
        return urlsplit(target).path

    async def delete(self, ref: str) -> None:
        target = urljoin(self.calendar_url, ref)
        if urlsplit(target)[:2] != urlsplit(self.calendar_url)[:2]:
            raise CalendarError("event href points outside the calendar's server")
        response = await self.http.delete(target, auth=self.auth or httpx.USE_CLIENT_DEFAULT)
        if response.status_code not in (200, 204, 404, 410):
            raise CalendarError(f"DELETE answered HTTP {response.status_code}")
