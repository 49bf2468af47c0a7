"""The agent's system prompt, built from a tenant's profile.

Three ways, chosen by the tenant's assistant settings:
- default: the platform's phone rules followed by the business's facts and the local time;
- `prompt_template`: the business's own text with {variables} filled, followed by the same
  phone rules (guided: the guardrails stay) and, unless it uses {today}/{now}, the local time;
- `custom_prompt`: the business's own text with {variables} filled, nothing added.

Variables: {business_name}, {address}, {services}, {hours}, {staff}, {faq}, {policies},
{closures}, {today} (e.g. "Wednesday 1 July 2026"), {now} (local time of day, e.g. "2:30pm"),
{timezone}; {name} and {time} are kept as aliases of {business_name} and {now}. An unknown
{variable} is left as written.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from shared.tenancy.tenant_directory import (
    ClosureInfo,
    ServiceInfo,
    StaffInfo,
    TenantProfile,
    WeeklyHours,
)

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_RULES = (
    "You are the receptionist answering the phone for {name}. You are on a live phone call: "
    "speak in short, plain sentences, one or two at a time, with no lists, markdown or emojis.",
    "Only state facts given here or returned by a tool; never invent prices, times, staff or "
    "bookings. If you do not know, say so and offer to take a message.",
    "Before proposing any time, call check_availability and offer only times it returns.",
    "Before booking, confirm the caller's name, phone number, the service and the exact day "
    "and time.",
)
_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_VARIABLE_USED = re.compile(r"\{(today|now|time)\}")
_TRANSFER_RULE = "If the caller asks for a person, offer to transfer the call."


def build_system_prompt(profile: TenantProfile, now: datetime | None = None) -> str:
    """A short, phone-appropriate system prompt with the business's facts and local time."""
    tz = ZoneInfo(profile.timezone)
    local = (now or datetime.now(tz)).astimezone(tz)
    variables = prompt_variables(profile, local)
    if profile.custom_prompt:
        return fill(profile.custom_prompt, variables)
    rules = [rule.format(name=profile.name) for rule in _RULES]
    if profile.transfer_number:
        rules.append(_TRANSFER_RULE)
    clock_line = (
        f"Today is {variables['today']} and the time is {variables['now']} ({profile.timezone})."
    )
    if profile.prompt_template:
        guided = [fill(profile.prompt_template, variables), *rules[1:]]
        if not _VARIABLE_USED.search(profile.prompt_template):
            guided.append(clock_line)
        return "\n".join(guided)
    facts = [
        ("Address", variables["address"]),
        ("Services", variables["services"]),
        ("Opening hours", variables["hours"]),
        ("Staff", staff_in_words(profile.staff)),
        ("Tables and rooms", _sentence(places_in_words(profile.staff))),
        ("Upcoming closures", variables["closures"]),
        ("Policies", variables["policies"]),
    ]
    lines = rules + [f"{label}: {text}" for label, text in facts if text]
    if profile.faq:
        lines.append("Frequently asked questions:")
        lines.append(variables["faq"])
    lines.append(clock_line)
    return "\n".join(lines)


def prompt_variables(profile: TenantProfile, local: datetime) -> dict[str, str]:
    """The values of every template variable, for `local` (the tenant's local time)."""
    people, places = staff_in_words(profile.staff), _sentence(places_in_words(profile.staff))
    return {
        "business_name": profile.name,
        "name": profile.name,
        "address": _sentence(profile.address),
        "services": _sentence("; ".join(service_words(s) for s in profile.services)),
        "hours": _sentence(hours_in_words(profile.hours)) if profile.hours else "",
        "staff": " ".join(filter(None, (people, places))),
        "closures": _sentence("; ".join(closure_words(c) for c in profile.closures)),
        "faq": "\n".join(f"Q: {q} A: {a}" for q, a in profile.faq),
        "policies": " ".join(_sentence(p) for p in _booking_policies(profile)),
        "today": date_words(local.date()),
        "now": clock(local.time()),
        "time": clock(local.time()),
        "timezone": profile.timezone,
    }


def fill(template: str, variables: dict[str, str]) -> str:
    """`template` with each known {variable} replaced; anything else (unknown names, JSON,
    stray braces) is left exactly as written."""
    return _VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), template)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def clock(t: time) -> str:
    """09:00 -> '9am', 17:30 -> '5:30pm', 12:00 -> '12pm'."""
    hour = t.hour % 12 or 12
    suffix = "am" if t.hour < 12 else "pm"
    return f"{hour}{suffix}" if t.minute == 0 else f"{hour}:{t.minute:02d}{suffix}"


def duration_words(minutes: int) -> str:
    """30 -> '30 minutes', 60 -> '1 hour', 90 -> '1 hour 30 minutes'."""
    hours, rest = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour" + ("s" if hours > 1 else ""))
    if rest or not hours:
        parts.append(f"{rest} minute" + ("s" if rest != 1 else ""))
    return " ".join(parts)


def date_words(day: date) -> str:
    """2026-07-01 -> 'Wednesday 1 July 2026'."""
    return f"{DAY_NAMES[day.weekday()]} {day.day} {day:%B %Y}"


def _day_range(first: int, last: int) -> str:
    if first == last:
        return DAY_NAMES[first]
    joiner = " and " if last == first + 1 else " to "
    return DAY_NAMES[first] + joiner + DAY_NAMES[last]


def hours_in_words(hours: WeeklyHours, closed: str | None = "closed") -> str:
    """'Monday to Friday 9am to 5:30pm, Saturday 9am to 1pm, closed Sunday': consecutive days
    with the same intervals are grouped; closed days are left out when `closed` is None."""
    runs: list[tuple[int, int, list[tuple[time, time]]]] = []
    for weekday in range(7):
        intervals = hours.get(weekday, [])
        if runs and runs[-1][2] == intervals and runs[-1][1] == weekday - 1:
            runs[-1] = (runs[-1][0], weekday, intervals)
        else:
            runs.append((weekday, weekday, intervals))
    parts = []
    for first, last, intervals in runs:
        days = _day_range(first, last)
        if intervals:
            spans = " and ".join(f"{clock(o)} to {clock(c)}" for o, c in intervals)
            parts.append(f"{days} {spans}")
        elif closed is not None:
            parts.append(f"{closed} {days}")
    return ", ".join(parts)


def service_words(service: ServiceInfo) -> str:
    """'Men's Haircut, £25, 30 minutes (a classic cut)'."""
    price = service.price_text() if service.price_minor else "free"
    text = f"{service.name}, {price}, {duration_words(service.duration_min)}"
    description = service.description.strip().rstrip(".")
    return f"{text} ({description})" if description else text


def staff_in_words(staff: list[StaffInfo]) -> str:
    """One sentence per person: what they do and, if they have their own, their hours."""
    sentences = []
    for person in staff:
        if person.kind != "staff":
            continue
        text = person.name
        if person.services:
            text += " does " + _and_list(person.services)
        if person.hours is not None:
            text += (", " if person.services else " ") + "working "
            text += hours_in_words(person.hours, closed=None) or "no regular hours"
        sentences.append(_sentence(text))
    return " ".join(sentences)


def places_in_words(staff: list[StaffInfo]) -> str:
    """Tables and rooms counted by size: '2 tables for 2 and 1 table for 6'."""
    sizes: dict[tuple[str, int], int] = {}
    for item in staff:
        if item.kind != "staff":
            key = (item.kind, item.capacity)
            sizes[key] = sizes.get(key, 0) + 1
    return _and_list(
        [
            f"{count} {kind}{'s' if count > 1 else ''} for {capacity}"
            for (kind, capacity), count in sorted(sizes.items())
        ]
    )


def closure_words(closure: ClosureInfo) -> str:
    """'closed Thursday 24 December to Sunday 27 December 2026 (Christmas)', or
    'Sam is away ...' for one staff member."""
    first, last = closure.starts_on, closure.ends_on
    if first == last:
        days = date_words(first)
    else:
        start = date_words(first)
        if first.year == last.year:
            start = f"{DAY_NAMES[first.weekday()]} {first.day} {first:%B}"
        days = f"{start} to {date_words(last)}"
    who = f"{closure.staff} is away" if closure.staff else "closed"
    return f"{who} {days}" + (f" ({closure.reason})" if closure.reason else "")


def _booking_policies(profile: TenantProfile) -> list[str]:
    rule = f"Bookings can be made up to {profile.horizon_days} days ahead"
    if profile.min_notice_min:
        rule += f" and at least {duration_words(profile.min_notice_min)} in advance"
    return [*profile.policies, rule] if profile.services else list(profile.policies)


def _and_list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
