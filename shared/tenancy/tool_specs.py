"""The functions the agent may call: one pydantic argument model each, from which the OpenAI
function schema is generated. The tools service implements them; the brain offers them.

Validation here is everything that needs no database: phone numbers (E.164, UK national
numbers normalised to +44), ISO local dates and times (interpreted later in the tenant's time
zone), lengths and ranges. Names of services and staff are matched by the tools service."""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
)

_PHONE_PUNCTUATION = re.compile(r"[\s\-().]")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_UK_NATIONAL = re.compile(r"^0[1-9]\d{8,9}$")


def normalize_phone(raw: str) -> str:
    """E.164 form of a phone number; UK national numbers (07..., 020...) become +44.

    Raises ValueError with a sentence the agent can say when it is not a phone number."""
    text = _PHONE_PUNCTUATION.sub("", raw.strip())
    if text.startswith("00"):
        text = "+" + text[2:]
    if _UK_NATIONAL.match(text):
        text = "+44" + text[1:]
    if text.startswith("+440"):  # "+44 (0)20 ..." written with the trunk zero
        text = "+44" + text[4:]
    if not _E164.match(text):
        raise ValueError(
            "that phone number doesn't look right; please ask for the full number"
            " with the area code"
        )
    return text


def _parse_local_date(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("a date must be written like 2025-12-03")
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise ValueError(f"'{value}' is not a date like 2025-12-03") from None


def _parse_local_datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("a time must be written like 2025-12-03T14:30")
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"'{value}' is not a date and time like 2025-12-03T14:30") from None
    if len(value.strip()) <= 10:
        raise ValueError(f"'{value}' has no time of day; use a form like 2025-12-03T14:30")
    return parsed


def _not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("this must not be empty")
    return value


Phone = Annotated[str, AfterValidator(normalize_phone)]
LocalDate = Annotated[
    date,
    PlainValidator(_parse_local_date),
    WithJsonSchema({"type": "string", "format": "date"}),
]
LocalDateTime = Annotated[
    datetime,
    PlainValidator(_parse_local_datetime),
    WithJsonSchema({"type": "string"}),
]
Text = Annotated[str, AfterValidator(_not_blank)]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArgs(_Args):
    """A tool without arguments."""


class CheckAvailabilityArgs(_Args):
    """Arguments of check_availability."""

    service: Text = Field(max_length=200, description="Service name, as list_services gives it.")
    staff: str | None = Field(
        None, max_length=200, description="Preferred staff member's name; omit for anyone."
    )
    date_from: LocalDate | None = Field(
        None, description="First local date to search, YYYY-MM-DD; omit for today."
    )
    date_to: LocalDate | None = Field(
        None, description="Last local date to search, YYYY-MM-DD; omit to find the next times."
    )
    party_size: int = Field(1, ge=1, le=50, description="Number of people (tables).")


class BookAppointmentArgs(_Args):
    """Arguments of book_appointment."""

    customer_name: Text = Field(max_length=200, description="The caller's name.")
    phone: Phone = Field(
        description="Caller's phone number with area code (E.164 like +447700900123)."
    )
    service: Text = Field(max_length=200, description="Service name, as list_services gives it.")
    start: LocalDateTime = Field(
        description="Local start time at the business, YYYY-MM-DDTHH:MM, as check_availability"
        " gives it."
    )
    staff: str | None = Field(
        None, max_length=200, description="Staff member's name; omit for anyone free."
    )
    party_size: int = Field(1, ge=1, le=50, description="Number of people (tables).")
    notes: str = Field("", max_length=1000, description="Anything the business should know.")


class BookingRef(_Args):
    """Arguments that name one of the caller's bookings."""

    booking_id: Text = Field(
        max_length=64, description="Booking reference from find_my_bookings (6 characters)."
    )


class RescheduleArgs(BookingRef):
    """Arguments of reschedule_appointment."""

    new_start: LocalDateTime = Field(
        description="New local start time, YYYY-MM-DDTHH:MM, as check_availability gives it."
    )
    staff: str | None = Field(
        None, max_length=200, description="Staff member's name; omit to keep or pick anyone."
    )


class TakeMessageArgs(_Args):
    """Arguments of take_message."""

    caller_name: Text = Field(max_length=200, description="The caller's name.")
    message: Text = Field(max_length=4000, description="The message, in the caller's words.")
    callback_number: Phone | None = Field(
        None, description="Number to call back on; omit to use the number they are calling from."
    )


class EndCallArgs(_Args):
    """Arguments of end_call."""

    reason: str = Field("", max_length=200, description="Why the call is ending (for the log).")


class TransferArgs(_Args):
    """Arguments of transfer_to_human."""

    reason: str = Field("", max_length=200, description="What the caller needs a person for.")


class ReportOutcomeArgs(_Args):
    """Arguments of report_outcome (outbound calls: what the call achieved)."""

    outcome: Literal["confirmed", "alternative_offered", "declined", "voicemail_left"] = Field(
        description="confirmed: booked as asked; alternative_offered: they offered another"
        " time; declined: they cannot book it; voicemail_left: you are leaving a voicemail."
    )
    time: LocalDateTime | None = Field(
        None,
        description="Local time booked or offered, YYYY-MM-DDTHH:MM; required for"
        " alternative_offered.",
    )
    accepted: bool | None = Field(
        None, description="For alternative_offered: whether you accepted (booked) that time."
    )
    notes: str = Field("", max_length=500, description="Anything else they said that matters.")


INTENT_TOOLS: dict[str, str] = {"end_call": "end", "transfer_to_human": "transfer"}
"""Tools whose success ends the call: tool name -> call.intent kind."""


class ToolSpec(BaseModel):
    """A function's name, description for the LLM, and argument model."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str
    description: str
    args: type[BaseModel]

    def openai_schema(self) -> dict[str, Any]:
        """The `tools[]` entry for a chat completion request."""
        params = self.args.model_json_schema()
        params.pop("title", None)
        params.pop("description", None)
        params.setdefault("properties", {})
        for prop in params["properties"].values():
            prop.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }


SPECS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec(
            name="get_business_info",
            description="The business's name, address, opening information and services.",
            args=NoArgs,
        ),
        ToolSpec(
            name="list_services",
            description="Every service with its price and how long it takes.",
            args=NoArgs,
        ),
        ToolSpec(
            name="check_availability",
            description="Free appointment times for a service (optionally with one staff member"
            " or in a date range). Offer the caller these times; never invent times.",
            args=CheckAvailabilityArgs,
        ),
        ToolSpec(
            name="book_appointment",
            description="Book a service at a start time check_availability offered. Confirm"
            " name, phone, service and time with the caller first.",
            args=BookAppointmentArgs,
        ),
        ToolSpec(
            name="find_my_bookings",
            description="The caller's upcoming bookings (found by the number they call from).",
            args=NoArgs,
        ),
        ToolSpec(
            name="reschedule_appointment",
            description="Move one of the caller's bookings to a new start time.",
            args=RescheduleArgs,
        ),
        ToolSpec(
            name="cancel_appointment",
            description="Cancel one of the caller's bookings. Confirm with the caller first.",
            args=BookingRef,
        ),
        ToolSpec(
            name="end_call",
            description="End the call once the caller has nothing else: say goodbye in the"
            " same reply; the line closes after your goodbye has been heard.",
            args=EndCallArgs,
        ),
        ToolSpec(
            name="transfer_to_human",
            description="Hand the caller to a member of staff when they ask for a person or"
            " you cannot help. Tell them you are connecting them.",
            args=TransferArgs,
        ),
        ToolSpec(
            name="take_message",
            description="Leave a message for the business to call the caller back.",
            args=TakeMessageArgs,
        ),
        ToolSpec(
            name="report_outcome",
            description="Outbound calls only: record what this call achieved, as soon as it is"
            " clear. Then say the 'say' text of the result.",
            args=ReportOutcomeArgs,
        ),
    )
}


@cache
def _openai_schemas() -> tuple[dict[str, Any], ...]:
    return tuple(spec.openai_schema() for spec in SPECS.values())


def openai_tools() -> list[dict[str, Any]]:
    """Every tool as an OpenAI function schema (built once per process: pydantic's JSON schema
    generation took ~2 ms per LLM round; the dicts are shared, so do not modify them)."""
    return list(_openai_schemas())
