"""What every calendar connector speaks: intervals, the event we write, and its one error type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

Interval = tuple[datetime, datetime]

OWN_EVENT_MARKER = "X-FRONTDESK-BOOKING"


class CalendarError(Exception):
    """A calendar answered with something we cannot use (HTTP error, bad config, bad data).
    The message is for logs: it never contains credentials."""


@dataclass(frozen=True)
class EventDraft:
    """A booking as an external calendar event.

    `key` is stable for one booking at one time on one resource and uses only the characters
    Google accepts in event ids (base32hex: 0-9 a-v), so re-sending the same draft after a lost
    reply finds the event made the first time instead of creating a second one.
    `transparent` marks events that must not count as busy time (set on business-wide calendars,
    whose busy time blocks every resource)."""

    key: str
    booking_id: str
    summary: str
    description: str
    start: datetime
    end: datetime
    timezone: str
    transparent: bool


class CalendarClient(Protocol):
    """One connected calendar."""

    async def busy(self, start: datetime, end: datetime) -> list[Interval]:
        """Busy intervals overlapping [start, end), as aware UTC datetimes."""
        ...

    async def create(self, draft: EventDraft) -> str:
        """Create the event (idempotent per draft.key); returns the ref to delete it by."""
        ...

    async def delete(self, ref: str) -> None:
        """Delete the event; an event that is already gone counts as deleted."""
        ...


def required_text(config: dict[str, Any], key: str) -> str:
    """A non-empty string from a connection's config, or a CalendarError naming the key."""
    value = config.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CalendarError(f"calendar connection config is missing {key!r}")
    return value.strip()


def optional_text(config: dict[str, Any], key: str, default: str = "") -> str:
    """A string from a connection's config (default when absent); wrong types are an error."""
    value = config.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise CalendarError(f"calendar connection config {key!r} must be a string")
    return value


def as_utc(moment: datetime) -> datetime:
    """An aware datetime converted to UTC (naive input is a programming error)."""
    if moment.tzinfo is None:
        raise ValueError(f"expected a timezone-aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


def merge(intervals: list[Interval]) -> list[Interval]:
    """Sorted, with overlapping or touching intervals joined."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
