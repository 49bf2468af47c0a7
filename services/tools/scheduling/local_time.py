"""Wall-clock time at a business versus instants in UTC (zoneinfo, DST-correct)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MIDNIGHT = time(0, 0)


def local_to_utc(wall: datetime, tz: ZoneInfo) -> datetime | None:
    """The UTC instant of a naive local wall-clock time.

    None for a time that does not exist (skipped when clocks spring forward); an ambiguous time
    (repeated when clocks fall back) resolves to its first occurrence."""
    first = wall.replace(tzinfo=tz, fold=0)
    instant = first.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != wall:
        return None
    return instant


def boundary_to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """Like local_to_utc, but a nonexistent wall time maps to the instant the gap ends, which is
    right for the edge of an opening window."""
    instant = local_to_utc(wall, tz)
    if instant is not None:
        return instant
    candidate = wall.replace(tzinfo=tz, fold=1).astimezone(UTC).replace(second=0, microsecond=0)
    latest = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    while candidate < latest and utc_to_local(candidate, tz) < wall:
        candidate += timedelta(minutes=1)
    return candidate


def utc_to_local(instant: datetime, tz: ZoneInfo) -> datetime:
    """The naive local wall-clock time of an aware instant."""
    return instant.astimezone(tz).replace(tzinfo=None)


def day_bounds(day: date, opens: time, closes: time) -> tuple[datetime, datetime]:
    """A local opening interval as naive datetimes; closing at 00:00 means midnight that night."""
    start = datetime.combine(day, opens)
    end = datetime.combine(day, closes)
    if closes == MIDNIGHT:
        end = datetime.combine(day + timedelta(days=1), MIDNIGHT)
    return start, end


def today(now: datetime, tz: ZoneInfo) -> date:
    """The business's local date at instant `now`."""
    return now.astimezone(tz).date()
