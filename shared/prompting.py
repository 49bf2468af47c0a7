"""The agent's system prompt, built from a tenant's profile (or its custom prompt)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from shared.tenant_directory import TenantProfile

_RULES = (
    "You are the receptionist answering the phone for {name}. You are speaking on a phone call: "
    "keep every answer to one or two short sentences, no lists, no markdown, no emojis. "
    "Use the tools for facts you are not given and never invent prices, times or bookings. "
    "If you do not know, say so and offer to take a message."
)


def build_system_prompt(profile: TenantProfile, now: datetime | None = None) -> str:
    """A short, phone-appropriate system prompt with the business's facts and local time."""
    tz = ZoneInfo(profile.timezone)
    local = (now or datetime.now(tz)).astimezone(tz)
    variables = {
        "name": profile.name,
        "address": profile.address,
        "today": local.strftime("%A %d %B %Y"),
        "time": local.strftime("%H:%M"),
        "timezone": profile.timezone,
    }
    if profile.custom_prompt:
        return profile.custom_prompt.format_map(_Default(variables))
    lines = [_RULES.format(name=profile.name)]
    if profile.address:
        lines.append(f"Address: {profile.address}.")
    if profile.services:
        items = "; ".join(
            f"{s.name} {s.price_text()} ({s.duration_min} min)" for s in profile.services
        )
        lines.append(f"Services: {items}.")
    for question, answer in profile.faq:
        lines.append(f"Q: {question} A: {answer}")
    lines.append(f"It is now {variables['today']}, {variables['time']} ({profile.timezone}).")
    return "\n".join(lines)


class _Default(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
