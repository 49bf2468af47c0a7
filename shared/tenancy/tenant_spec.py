"""A whole business as written in a tenant YAML file, validated before it touches the database.

Every model forbids unknown keys, so a typo ("hours: {munday: ...}", "durration_min") is an
error naming the field rather than a silently ignored line.
"""

from __future__ import annotations

import re
from datetime import date, time
from decimal import Decimal
from itertools import pairwise
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from shared.contract.conversation_knobs import ConversationKnobs

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
E164_PATTERN = r"^\+[1-9]\d{6,14}$"
PIPELINES = Literal["cascade", "deepgram-agent", "elevenlabs-agent"]
SPEECH = Literal["vendor", "local"]
"""Who hears and speaks a tenant's cascade calls: the deployment's providers (Deepgram STT, the
number's voice) or the self-hosted speech service (services/speech, metered at compute)."""
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")

Interval = tuple[time, time]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _clock(hour: int, minute: int, text: str) -> time:
    if hour > 23 or minute > 59:
        raise ValueError(f"{text!r}: {hour:02d}:{minute:02d} is not a time of day (00:00-23:59)")
    return time(hour, minute)


def parse_interval(text: object) -> Interval:
    """'09:00-17:30' -> (09:00, 17:30); opening must be before closing."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r}: write an opening interval as a quoted 'HH:MM-HH:MM'")
    match = _RANGE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an opening interval like '09:00-17:30'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    opens, closes = _clock(h1, m1, text), _clock(h2, m2, text)
    if opens >= closes:
        raise ValueError(f"{text!r}: opening time must be before closing time")
    return opens, closes


class WeeklyHoursSpec(_Spec):
    """Opening intervals per weekday, e.g. `mon: ["09:00-13:00", "14:00-17:30"]`; a day that
    is missing or empty is closed."""

    mon: list[Interval] = []
    tue: list[Interval] = []
    wed: list[Interval] = []
    thu: list[Interval] = []
    fri: list[Interval] = []
    sat: list[Interval] = []
    sun: list[Interval] = []

    @field_validator(*WEEKDAYS, mode="before")
    @classmethod
    def _parse_day(cls, value: Any) -> list[Interval]:
        if value is None:
            return []
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            raise ValueError("expected a list of 'HH:MM-HH:MM' intervals")
        intervals = sorted(parse_interval(item) for item in items)
        for (_, closes), (opens, _) in pairwise(intervals):
            if opens < closes:
                raise ValueError(f"intervals overlap around {opens:%H:%M}")
        return intervals

    @field_serializer(*WEEKDAYS)
    def _write_day(self, intervals: list[Interval]) -> list[str]:
        return [f"{opens:%H:%M}-{closes:%H:%M}" for opens, closes in intervals]


class NumberSpec(_Spec):
    """A phone number of the business and how calls to it are served."""

    e164: str = Field(pattern=E164_PATTERN)
    pipeline: PIPELINES = "cascade"
    voice: str = ""
    transfer_number: str | None = Field(default=None, pattern=E164_PATTERN)

    @field_validator("e164", "transfer_number", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        if isinstance(value, int):
            raise ValueError(f'{value}: write phone numbers quoted, e.g. "+441632960001"')
        return value


class AssistantSpec(_Spec):
    """How the agent greets and talks; at most one of prompt_template and custom_prompt."""

    greeting: str = ""
    prompt_template: str | None = None
    custom_prompt: str | None = None
    language: str = Field(default="en", min_length=2, max_length=16)
    max_call_minutes: int = Field(default=15, gt=0, le=240)
    conversation: ConversationKnobs = ConversationKnobs()

    @model_validator(mode="after")
    def _one_prompt(self) -> AssistantSpec:
        if self.prompt_template and self.custom_prompt:
            raise ValueError("assistant: set prompt_template or custom_prompt, not both")
        return self


class ServiceSpec(_Spec):
    """A service with its price in major units (25.00 = £25)."""

    name: str = Field(min_length=1, max_length=200)
    duration_min: int = Field(gt=0, le=24 * 60)
    price: Decimal = Field(ge=0, decimal_places=2, max_digits=9)
    buffer_min: int = Field(default=0, ge=0, le=24 * 60)
    description: str = ""

    def price_minor(self) -> int:
        """The price in minor units (pence, cents)."""
        return int(self.price * 100)


class StaffSpec(_Spec):
    """A staff member, table or room. `services` omitted: performs every service; `hours`
    omitted: available whenever the business is open."""

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["staff", "table", "room"] = "staff"
    capacity: int = Field(default=1, ge=1, le=1000)
    services: list[str] | None = None
    hours: WeeklyHoursSpec | None = None


class ClosureSpec(_Spec):
    """Days closed, inclusive (`to` omitted: one day); `staff` set: only that person."""

    starts_on: date = Field(alias="from")
    ends_on: date | None = Field(default=None, alias="to")
    reason: str = ""
    staff: str | None = None

    def last_day(self) -> date:
        """The last closed day."""
        return self.ends_on or self.starts_on

    @model_validator(mode="after")
    def _ordered(self) -> ClosureSpec:
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise ValueError(f"closure: 'to' ({self.ends_on}) is before 'from' ({self.starts_on})")
        return self


class KnowledgeSpec(_Spec):
    """One FAQ entry."""

    q: str = Field(min_length=1)
    a: str = Field(min_length=1)


class CalendarSpec(_Spec):
    """An external calendar whose busy time blocks slots (of one staff member, or all)."""

    kind: Literal["google", "caldav"]
    staff: str | None = None
    timeout_ms: int = Field(default=1500, gt=0, le=30_000)
    config: dict[str, Any] = {}


class BookingPolicySpec(_Spec):
    """How far ahead and on which grid callers can book."""

    min_notice_min: int = Field(default=60, ge=0)
    slot_step_min: int = Field(default=15, gt=0, le=240)
    horizon_days: int = Field(default=60, gt=0, le=730)


class RecordingSpec(_Spec):
    """Call recording: on or off, a line spoken before recording starts, and how many days
    recordings are kept (the recorder deletes older ones)."""

    enabled: bool = True
    disclosure: str = Field(default="", max_length=500)
    retention_days: int = Field(default=30, ge=1, le=3650)


class TenantSpec(_Spec):
    """A whole business as written in YAML."""

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    address: str = ""
    timezone: str = "UTC"
    currency: str = Field(default="GBP", pattern=r"^[A-Z]{3}$")
    booking: BookingPolicySpec = Field(default_factory=BookingPolicySpec)
    policies: list[str] = []
    numbers: list[NumberSpec] = []
    assistant: AssistantSpec = Field(default_factory=AssistantSpec)
    services: list[ServiceSpec] = []
    staff: list[StaffSpec] = []
    hours: WeeklyHoursSpec = Field(default_factory=WeeklyHoursSpec)
    closures: list[ClosureSpec] = []
    knowledge: list[KnowledgeSpec] = []
    calendars: list[CalendarSpec] = []
    recording: RecordingSpec = Field(default_factory=RecordingSpec)
    speech: SPEECH = "vendor"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from exc
        return value

    @field_validator("policies", mode="before")
    @classmethod
    def _policy_lines(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [line.strip() for line in value.splitlines() if line.strip()]
        return value

    def service_names(self) -> list[str]:
        """Names of the services, in file order."""
        return [s.name for s in self.services]

    def services_of(self, staff: StaffSpec) -> list[str]:
        """The services a staff member performs (all of them when not listed)."""
        return self.service_names() if staff.services is None else staff.services

    @model_validator(mode="after")
    def _references(self) -> TenantSpec:
        _unique("services", self.service_names())
        _unique("staff", [s.name for s in self.staff])
        _unique("numbers", [n.e164 for n in self.numbers])
        known = set(self.service_names())
        for s in self.staff:
            for service in s.services or []:
                if service not in known:
                    raise ValueError(
                        f"staff {s.name!r}: unknown service {service!r} "
                        f"(services: {', '.join(sorted(known)) or 'none'})"
                    )
        staff = {s.name for s in self.staff}
        for section, entries in (("closures", self.closures), ("calendars", self.calendars)):
            for entry in entries:
                if entry.staff is not None and entry.staff not in staff:
                    raise ValueError(f"{section}: unknown staff {entry.staff!r}")
        return self


def _unique(section: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{section}: {name!r} appears twice")
        seen.add(name)
