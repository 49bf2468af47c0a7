"""Times, dates and prices as the agent says them ("Tuesday 3 December at 2:30pm", "£25")."""

from __future__ import annotations

from datetime import date, datetime, time

_SYMBOLS = {"GBP": "£", "USD": "$", "EUR": "€"}


def clock(t: time) -> str:
    """'2pm', '2:30pm', '12pm' (noon), '12am' (midnight)."""
    hour = t.hour % 12 or 12
    suffix = "am" if t.hour < 12 else "pm"
    return f"{hour}{suffix}" if t.minute == 0 else f"{hour}:{t.minute:02d}{suffix}"


def day(d: date) -> str:
    """'Tuesday 3 December'."""
    return f"{d:%A} {d.day} {d:%B}"


def moment(wall: datetime) -> str:
    """'Tuesday 3 December at 2:30pm' for a local wall-clock time."""
    return f"{day(wall.date())} at {clock(wall.time())}"


def iso_local(wall: datetime) -> str:
    """'2024-12-03T14:30': the form the booking tools accept back."""
    return wall.replace(second=0, microsecond=0).isoformat(timespec="minutes")


def price(minor: int, currency: str) -> str:
    """'£25' or '£7.50'."""
    symbol = _SYMBOLS.get(currency, currency + " ")
    whole, cents = divmod(minor, 100)
    return f"{symbol}{whole}" if cents == 0 else f"{symbol}{whole}.{cents:02d}"


def duration(minutes: int) -> str:
    """'30 minutes', '1 hour', '1 hour 15 minutes'."""
    hours, rest = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour" + ("s" if hours > 1 else ""))
    if rest or not hours:
        parts.append(f"{rest} minute" + ("s" if rest != 1 else ""))
    return " ".join(parts)


def names(items: list[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
