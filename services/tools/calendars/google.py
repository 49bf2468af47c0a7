"""Google Calendar REST v3 over httpx: busy time from `freeBusy`, bookings written with
`events.insert` and removed with `events.delete`.

Config keys: `calendar_id`, `access_token`, `base_url` (default https://www.googleapis.com).

OAuth is out of scope here: `access_token` is sent as-is. Refreshing it (the refresh_token
grant against oauth2.googleapis.com, and storing the new token) is not implemented, so an
expired token shows up as a 401, which the time box reports as a calendar we could not check.

freeBusy reports busy time only, so (unlike CalDAV) events FrontDesk wrote itself cannot be
told apart from others there: on a resource's own calendar they coincide with that booking,
and on a business-wide calendar they are written `transparent`, so they never block anyone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from services.tools.calendars.model import CalendarError, EventDraft, Interval, required_text

DEFAULT_BASE_URL = "https://www.googleapis.com"


def _rfc3339_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise CalendarError(f"freeBusy time is not a string: {value!r}")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise CalendarError(f"freeBusy time without an offset: {value!r}")
    return moment.astimezone(UTC)


def _error_detail(response: httpx.Response) -> str:
    """`HTTP 401 UNAUTHENTICATED: message` from Google's JSON error body (if it has one)."""
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    status = error.get("status") or ""
    message = str(error.get("message") or response.reason_phrase)[:200]
    return f"HTTP {response.status_code} {status}".rstrip() + f": {message}"


class GoogleCalendar:
    """One Google calendar, reached with a bearer access token."""

    def __init__(self, http: httpx.AsyncClient, config: dict[str, Any]) -> None:
        self.http = http
        self.calendar_id = required_text(config, "calendar_id")
        base = config.get("base_url") or DEFAULT_BASE_URL
        if not isinstance(base, str) or not base.startswith(("http://", "https://")):
            raise CalendarError("base_url must be an http(s) URL")
        self.base = base.rstrip("/") + "/calendar/v3"
        self.headers = {"Authorization": f"Bearer {required_text(config, 'access_token')}"}

    def _events_url(self, event_id: str = "") -> str:
        url = f"{self.base}/calendars/{quote(self.calendar_id, safe='')}/events"
        return f"{url}/{quote(event_id, safe='')}" if event_id else url

    async def busy(self, start: datetime, end: datetime) -> list[Interval]:
        body = {
            "timeMin": _rfc3339_utc(start),
            "timeMax": _rfc3339_utc(end),
            "items": [{"id": self.calendar_id}],
        }
        response = await self.http.post(f"{self.base}/freeBusy", json=body, headers=self.headers)
        if response.is_error:
            raise CalendarError(f"freeBusy: {_error_detail(response)}")
        entry = response.json()["calendars"][self.calendar_id]
        if entry.get("errors"):
            reasons = ", ".join(str(e.get("reason")) for e in entry["errors"])
            raise CalendarError(f"freeBusy: calendar error ({reasons})")
        return [(_parse_time(b["start"]), _parse_time(b["end"])) for b in entry.get("busy", [])]

    async def create(self, draft: EventDraft) -> str:
        zone = ZoneInfo(draft.timezone)
        body: dict[str, Any] = {
            "id": draft.key,
            "summary": draft.summary,
            "description": draft.description,
            "start": {
                "dateTime": draft.start.astimezone(zone).isoformat(),
                "timeZone": draft.timezone,
            },
            "end": {"dateTime": draft.end.astimezone(zone).isoformat(), "timeZone": draft.timezone},
            "transparency": "transparent" if draft.transparent else "opaque",
            "extendedProperties": {"private": {"frontdeskBookingId": draft.booking_id}},
        }
        response = await self.http.post(self._events_url(), json=body, headers=self.headers)
        if response.status_code == 409:  # our id already exists: an earlier attempt got through
            return draft.key
        if response.is_error:
            raise CalendarError(f"events.insert: {_error_detail(response)}")
        event_id = response.json()["id"]
        if not isinstance(event_id, str):
            raise CalendarError("events.insert answered without an event id")
        return event_id

    async def delete(self, ref: str) -> None:
        response = await self.http.delete(self._events_url(ref), headers=self.headers)
        if response.status_code in (404, 410):  # already gone
            return
        if response.is_error:
            raise CalendarError(f"events.delete: {_error_detail(response)}")
