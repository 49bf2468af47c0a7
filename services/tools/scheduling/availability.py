"""The slot engine: which start times are free for a service. Pure (no I/O).

Inputs are local weekly hours (business-wide, and optionally per resource, which only narrow
the business hours), closures by local date, busy intervals in UTC (confirmed bookings' blocked
ranges and external calendar time), the service's duration and buffer, the slot step, the lead
time, the horizon, "now" and the business's time zone.

Slots are wall-clock times (opening time, then every `step`) converted to UTC: a time that does
not exist because clocks spring forward is skipped; a time repeated when clocks fall back is
its first occurrence. A slot occupies [start, start + duration + buffer), like the bookings'
`blocked` range the database constraint checks; the appointment itself must end by closing
time (the buffer may run past it)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from services.tools.scheduling.local_time import (
    boundary_to_utc,
    day_bounds,
    local_to_utc,
    today,
)

Interval = tuple[datetime, datetime]
Hours = Mapping[int, Sequence[tuple[time, time]]]  # weekday (0 = Monday) -> (opens, closes)


@dataclass(frozen=True)
class Closure:
    """Inclusive local dates on which the business or a resource is closed."""

    starts_on: date
    ends_on: date
    reason: str = ""

    def covers(self, day: date) -> bool:
        """Whether `day` falls inside the closure."""
        return self.starts_on <= day <= self.ends_on


class BusyTimes:
    """Disjoint, sorted busy intervals (UTC) with a fast overlap test."""

    def __init__(self, intervals: Iterable[Interval]) -> None:
        merged: list[Interval] = []
        for start, end in sorted(i for i in intervals if i[1] > i[0]):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        self.intervals = merged
        self._starts = [start for start, _ in merged]

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end) meets any busy interval."""
        i = bisect_right(self._starts, start) - 1
        if i >= 0 and self.intervals[i][1] > start:
            return True
        return i + 1 < len(self.intervals) and self.intervals[i + 1][0] < end


@dataclass(frozen=True)
class ResourceCalendar:
    """One bookable resource: its own hours (None: the business hours), closures, busy time."""

    id: int
    name: str
    hours: Hours | None = None
    closures: tuple[Closure, ...] = ()
    busy: BusyTimes = field(default_factory=lambda: BusyTimes(()))


@dataclass(frozen=True)
class SlotRules:
    """Everything about the business and the service that decides whether a time is free."""

    tz: ZoneInfo
    business_hours: Hours
    now: datetime
    duration: timedelta
    buffer: timedelta = timedelta(0)
    step: timedelta = timedelta(minutes=15)
    min_notice: timedelta = timedelta(0)
    horizon_days: int = 60
    closures: tuple[Closure, ...] = ()

    @property
    def first_start(self) -> datetime:
        """The earliest instant a slot may start (now plus the lead time)."""
        return self.now + self.min_notice

    @property
    def last_day(self) -> date:
        """The last local date that can be booked."""
        return today(self.now, self.tz) + timedelta(days=self.horizon_days)


@dataclass(frozen=True)
class Slot:
    """A free start time on one resource."""

    start: datetime  # UTC
    end: datetime  # UTC, end of the appointment (the buffer follows it)
    local: datetime  # naive wall-clock start at the business
    resource_id: int
    resource_name: str


class Problem(Enum):
    """Why a requested start time cannot be booked."""

    NONEXISTENT = "nonexistent"  # skipped by a daylight-saving change
    PAST = "past"
    TOO_SOON = "too_soon"
    BEYOND_HORIZON = "beyond_horizon"
    CLOSED = "closed"  # a closure covers the day
    OUTSIDE_HOURS = "outside_hours"
    TAKEN = "taken"


@dataclass(frozen=True)
class StartCheck:
    """The verdict on one requested start: free resources, or the problem (and a closure)."""

    start: datetime | None
    free: list[ResourceCalendar]
    problem: Problem | None = None
    closure: Closure | None = None


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for a_start, a_end in a:
        for b_start, b_end in b:
            start, end = max(a_start, b_start), min(a_end, b_end)
            if start < end:
                out.append((start, end))
    return sorted(out)


def _windows(hours: Hours, day: date) -> list[Interval]:
    return sorted(day_bounds(day, o, c) for o, c in hours.get(day.weekday(), ()))


def open_windows(rules: SlotRules, resource: ResourceCalendar, day: date) -> list[Interval]:
    """The local (naive) intervals `resource` works on `day`, after closures."""
    if any(c.covers(day) for c in (*rules.closures, *resource.closures)):
        return []
    windows = _windows(rules.business_hours, day)
    if resource.hours is not None:
        windows = _intersect(windows, _windows(resource.hours, day))
    return windows


def _fits(rules: SlotRules, resource: ResourceCalendar, wall: datetime, start: datetime) -> bool:
    end = start + rules.duration
    for opens, closes in open_windows(rules, resource, wall.date()):
        if opens <= wall < closes:
            return (
                start >= boundary_to_utc(opens, rules.tz)
                and end <= boundary_to_utc(closes, rules.tz)
                and not resource.busy.overlaps(start, end + rules.buffer)
            )
    return False


def slots_on(rules: SlotRules, resources: Sequence[ResourceCalendar], day: date) -> list[Slot]:
    """Every free start on local `day`, each on the first free resource (in the given order)."""
    if day > rules.last_day:
        return []
    walls: set[datetime] = set()
    for resource in resources:
        for opens, closes in open_windows(rules, resource, day):
            wall = opens
            while wall < closes:
                walls.add(wall)
                wall += rules.step
    slots: list[Slot] = []
    for wall in sorted(walls):
        start = local_to_utc(wall, rules.tz)
        if start is None or start < rules.first_start:
            continue
        for resource in resources:
            if _fits(rules, resource, wall, start):
                slots.append(Slot(start, start + rules.duration, wall, resource.id, resource.name))
                break
    return slots


def _spread(day_slots: list[Slot], per_day: int, gap: timedelta) -> list[Slot]:
    chosen: list[Slot] = []
    for slot in day_slots:
        if len(chosen) == per_day:
            break
        if not chosen or slot.start >= chosen[-1].start + gap:
            chosen.append(slot)
    return chosen


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def find_slots(
    rules: SlotRules,
    resources: Sequence[ResourceCalendar],
    first_day: date,
    last_day: date | None = None,
    *,
    limit: int = 5,
) -> list[Slot]:
    """Up to `limit` free slots from `first_day` to `last_day` (default: the horizon), spread
    over days (at most two a day, some hours apart) unless the range is a single day."""
    first_day = max(first_day, today(rules.now, rules.tz))
    last_day = min(last_day or rules.last_day, rules.last_day)
    single_day = first_day == last_day
    per_day = limit if single_day else 2
    gap = timedelta(hours=1) if single_day else timedelta(hours=3)
    picked: list[Slot] = []
    spare: list[Slot] = []
    for day in _days(first_day, last_day):
        day_slots = slots_on(rules, resources, day)
        chosen = _spread(day_slots, per_day, gap)
        picked.extend(chosen)
        spare.extend(s for s in day_slots if s not in chosen)
        if len(picked) >= limit:
            break
    if len(picked) < limit:
        picked.extend(spare[: limit - len(picked)])
    return sorted(picked, key=lambda s: (s.start, s.resource_id))[:limit]


def check_start(
    rules: SlotRules, resources: Sequence[ResourceCalendar], wall: datetime
) -> StartCheck:
    """Whether local `wall` can be booked, and on which resources (in the given order)."""
    start = local_to_utc(wall, rules.tz)
    if start is None:
        return StartCheck(None, [], Problem.NONEXISTENT)
    if start <= rules.now:
        return StartCheck(start, [], Problem.PAST)
    if start < rules.first_start:
        return StartCheck(start, [], Problem.TOO_SOON)
    if wall.date() > rules.last_day:
        return StartCheck(start, [], Problem.BEYOND_HORIZON)
    closure = next((c for c in rules.closures if c.covers(wall.date())), None)
    if closure is not None:
        return StartCheck(start, [], Problem.CLOSED, closure)
    working = [
        r
        for r in resources
        if any(
            opens <= wall and start + rules.duration <= boundary_to_utc(closes, rules.tz)
            for opens, closes in open_windows(rules, r, wall.date())
        )
    ]
    if not working:
        own = next((c for r in resources for c in r.closures if c.covers(wall.date())), None)
        if own is not None and len(resources) == 1:
            return StartCheck(start, [], Problem.CLOSED, own)
        return StartCheck(start, [], Problem.OUTSIDE_HOURS)
    free = [r for r in working if _fits(rules, r, wall, start)]
    return StartCheck(start, free, None if free else Problem.TAKEN)
