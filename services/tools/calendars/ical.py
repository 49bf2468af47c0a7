"""The slice of iCalendar (RFC 5545) the CalDAV connector needs, hand-written so production
code does not depend on a parser library: unfold and split content lines, read VEVENT
DTSTART/DTEND/DURATION (UTC, TZID, floating and all-day DATE forms) into busy intervals, and
write one VEVENT for a booking."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.tools.calendars.model import (
    OWN_EVENT_MARKER,
    CalendarError,
    EventDraft,
    Interval,
)

_DURATION = re.compile(
    r"^(?P<sign>[+-])?P(?:(?P<weeks>\d+)W|(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


@dataclass
class Property:
    """One content line: NAME;PARAM=VALUE:value (name and parameter names upper-cased)."""

    name: str
    params: dict[str, str]
    value: str


@dataclass
class VEvent:
    """The top-level properties of one VEVENT (nested VALARMs are skipped)."""

    props: dict[str, Property] = field(default_factory=dict)

    def get(self, name: str) -> Property | None:
        return self.props.get(name)


def unfold(text: str) -> list[str]:
    """Content lines with folding (CRLF + space/tab) undone; blank lines dropped."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif raw:
            lines.append(raw)
    return lines


def parse_line(line: str) -> Property:
    """Split a content line into name, parameters and value (quoted parameter values kept)."""
    in_quotes = False
    for index, char in enumerate(line):
        if char == '"':
            in_quotes = not in_quotes
        elif char == ":" and not in_quotes:
            head, value = line[:index], line[index + 1 :]
            break
    else:
        raise CalendarError(f"iCalendar line without a value: {line[:60]!r}")
    name, *raw_params = _split_unquoted(head, ";")
    params: dict[str, str] = {}
    for raw in raw_params:
        key, _, val = raw.partition("=")
        params[key.upper()] = val.strip('"')
    return Property(name=name.upper(), params=params, value=value)


def _split_unquoted(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    in_quotes = False
    for char in text:
        if char == '"':
            in_quotes = not in_quotes
        if char == sep and not in_quotes:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_events(text: str) -> list[VEvent]:
    """Every VEVENT of a VCALENDAR text."""
    events: list[VEvent] = []
    current: VEvent | None = None
    depth_inside_event = 0
    for line in unfold(text):
        prop = parse_line(line)
        if prop.name == "BEGIN":
            if current is not None:
                depth_inside_event += 1
            elif prop.value.upper() == "VEVENT":
                current = VEvent()
        elif prop.name == "END":
            if current is not None and depth_inside_event:
                depth_inside_event -= 1
            elif current is not None and prop.value.upper() == "VEVENT":
                events.append(current)
                current = None
        elif current is not None and not depth_inside_event:
            current.props.setdefault(prop.name, prop)
    if current is not None:
        raise CalendarError("iCalendar data ends inside a VEVENT")
    return events


def _zone(tzid: str, local: tzinfo) -> tzinfo:
    """An IANA zone for a TZID; unknown ids (Windows names, custom VTIMEZONEs) fall back to the
    business's own zone, the zone a business calendar almost always uses."""
    try:
        return ZoneInfo(tzid.lstrip("/"))
    except (ZoneInfoNotFoundError, ValueError):
        return local


def parse_moment(prop: Property, local: tzinfo) -> tuple[datetime, bool]:
    """DTSTART/DTEND as an aware UTC datetime, and whether it was an all-day DATE value.
    Dates and floating times are in the business's zone `local`."""
    value = prop.value.strip()
    try:
        if prop.params.get("VALUE", "").upper() == "DATE" or len(value) == 8:
            day = date(int(value[0:4]), int(value[4:6]), int(value[6:8]))
            return datetime.combine(day, time(0), local).astimezone(UTC), True
        naive = datetime.strptime(value.rstrip("Zz"), "%Y%m%dT%H%M%S")
    except ValueError as exc:
        raise CalendarError(f"bad {prop.name} value {value!r}") from exc
    if value[-1:] in ("Z", "z"):
        return naive.replace(tzinfo=UTC), False
    zone = _zone(prop.params["TZID"], local) if "TZID" in prop.params else local
    return naive.replace(tzinfo=zone).astimezone(UTC), False


def parse_duration(value: str) -> timedelta:
    """An RFC 5545 DURATION (P1D, PT1H30M, P2W, -PT15M)."""
    match = _DURATION.match(value.strip())
    if not match or value.strip() in ("P", "PT", "+P", "-P"):
        raise CalendarError(f"bad DURATION value {value!r}")
    parts = {k: int(v) for k, v in match.groupdict().items() if v and k != "sign"}
    span = timedelta(
        weeks=parts.get("weeks", 0),
        days=parts.get("days", 0),
        hours=parts.get("hours", 0),
        minutes=parts.get("minutes", 0),
        seconds=parts.get("seconds", 0),
    )
    return -span if match.group("sign") == "-" else span


def event_interval(event: VEvent, local: tzinfo) -> Interval | None:
    """The time a VEVENT blocks, or None when it blocks nothing (transparent, cancelled)."""
    transp, status = event.get("TRANSP"), event.get("STATUS")
    if transp is not None and transp.value.strip().upper() == "TRANSPARENT":
        return None
    if status is not None and status.value.strip().upper() == "CANCELLED":
        return None
    dtstart = event.get("DTSTART")
    if dtstart is None:
        raise CalendarError("VEVENT without DTSTART")
    start, all_day = parse_moment(dtstart, local)
    dtend, duration = event.get("DTEND"), event.get("DURATION")
    if dtend is not None:
        end, _ = parse_moment(dtend, local)
    elif duration is not None:
        end = start + parse_duration(duration.value)
    else:  # RFC 5545 3.6.1: a date lasts one day, a date-time is an instant
        end = start + timedelta(days=1) if all_day else start
    return (start, max(start, end))


def is_own_event(event: VEvent) -> bool:
    """Whether FrontDesk wrote this event (our bookings are already busy in our database)."""
    return event.get(OWN_EVENT_MARKER) is not None


def is_unexpanded_recurrence(event: VEvent) -> bool:
    """A recurrence master the server did not expand into instances."""
    return event.get("RRULE") is not None or event.get("RDATE") is not None


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Fold a content line at 75 octets without splitting a UTF-8 character."""
    out, chunk, size, limit = [], "", 0, 75
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            out.append(chunk)
            chunk, size, limit = " ", 1, 75
        chunk += char
        size += width
    out.append(chunk)
    return "\r\n".join(out)


def _utc_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def event_uid(draft: EventDraft) -> str:
    """The UID of the event written for a draft."""
    return f"{draft.key}@frontdesk"


def build_calendar(draft: EventDraft, now: datetime) -> str:
    """A VCALENDAR with one VEVENT for the booking (times in UTC, no VTIMEZONE needed)."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//FrontDesk//Bookings//EN",
        "BEGIN:VEVENT",
        f"UID:{event_uid(draft)}",
        f"DTSTAMP:{_utc_stamp(now)}",
        f"DTSTART:{_utc_stamp(draft.start)}",
        f"DTEND:{_utc_stamp(draft.end)}",
        f"SUMMARY:{_escape(draft.summary)}",
        f"DESCRIPTION:{_escape(draft.description)}",
        f"TRANSP:{'TRANSPARENT' if draft.transparent else 'OPAQUE'}",
        f"{OWN_EVENT_MARKER}:{_escape(draft.booking_id)}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(_fold(line) + "\r\n" for line in lines)
