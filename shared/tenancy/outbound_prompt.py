"""The outbound script: what a restaurant-reservation call is about, the agent's instructions,
its opening line, and the exact words it ends with (thanks, or the voicemail it leaves).

The gateway validates `ReservationDetails` when the call is requested and builds the prompt
when the callee answers; the tools service uses the same model when the agent reports the
outcome. Times are local to the tenant (the business that places the call).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.tenancy.prompting import clock, date_words

PURPOSE_RESERVATION = "restaurant_reservation"
Purpose = Literal["restaurant_reservation"]

VOICEMAIL_CUE = (
    "[Answering machine: the greeting has ended and the beep has sounded."
    " Leave your voicemail now.]"
)
"""The turn the gateway adds when answering machine detection reports the beep."""

_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


def _e164(value: str) -> str:
    value = value.strip()
    if not _E164.match(value):
        raise ValueError("must be an E.164 number like +441632960123")
    return value


def _local(value: datetime) -> datetime:
    if value.tzinfo is not None:
        raise ValueError("give the local time at the business, without a UTC offset")
    return value.replace(second=0, microsecond=0)


E164 = Annotated[str, AfterValidator(_e164)]
LocalTime = Annotated[datetime, AfterValidator(_local)]


class ReservationDetails(BaseModel):
    """A table to book by phone for a customer (`date_time` is local to the tenant)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    restaurant_number: E164 = Field(description="The restaurant's phone number, E.164.")
    restaurant_name: str = Field("", max_length=200, description="How to address the venue.")
    customer_name: str = Field(min_length=1, max_length=200, description="Booking name.")
    party_size: int = Field(ge=1, le=20, description="Number of guests.")
    date_time: LocalTime = Field(description="Wanted local time, ISO 8601 (2026-12-05T19:00).")
    flexibility_minutes: int = Field(
        0, ge=0, le=240, description="How far from date_time an offered time is acceptable."
    )
    callback_number: E164 = Field(description="Where the restaurant can reach the customer.")
    notes: str = Field("", max_length=500, description="Anything to mention (e.g. a high chair).")

    def when(self) -> str:
        """'Friday 5 December 2026 at 7pm'."""
        return f"{date_words(self.date_time.date())} at {clock(self.date_time.time())}"

    def within_flexibility(self, offered: datetime) -> bool:
        """Whether an offered local time is close enough to the wanted one."""
        offered = offered.replace(tzinfo=None)
        return abs(offered - self.date_time) <= timedelta(minutes=self.flexibility_minutes)


def spoken_number(e164: str) -> str:
    """'+441632960123' -> '4 4 1 6 3 2, 9 6 0 1 2 3' (digits a voice reads one by one)."""
    digits = e164.lstrip("+")
    half = len(digits) // 2
    return " ".join(digits[:half]) + ", " + " ".join(digits[half:])


def _venue(details: ReservationDetails) -> str:
    return details.restaurant_name or "the restaurant"


def opening_line(details: ReservationDetails) -> str:
    """The first thing the agent says when the call connects."""
    people = "person" if details.party_size == 1 else "people"
    return (
        f"Hello, I'm an automated assistant calling on behalf of {details.customer_name}. "
        f"I'd like to book a table for {details.party_size} {people} on {details.when()}. "
        "Do you have a table then?"
    )


def voicemail_message(details: ReservationDetails) -> str:
    """The short message left after the beep."""
    return (
        f"Hello, this is a message for {_venue(details)} on behalf of {details.customer_name}, "
        f"who would like a table for {details.party_size} on {details.when()}. "
        f"Please call back on {spoken_number(details.callback_number)}. Thank you, goodbye."
    )


def closing_line(outcome: str, details: ReservationDetails) -> str:
    """What the agent says right after reporting `outcome` (the voicemail itself, or thanks)."""
    if outcome == "voicemail_left":
        return voicemail_message(details)
    if outcome in ("confirmed", "alternative_offered"):
        return "Thank you so much for your help."
    return "No problem, thank you for your time."


def outbound_system_prompt(details: ReservationDetails, caller_business: str) -> str:
    """Instructions for the agent placing a reservation call."""
    flex = details.flexibility_minutes
    flexibility = (
        f"Accept another time only if it is within {flex} minutes of the wanted time"
        f" (so between {clock((details.date_time - timedelta(minutes=flex)).time())} and"
        f" {clock((details.date_time + timedelta(minutes=flex)).time())} on the same day)."
        if flex
        else "Only the wanted time works; do not accept another time."
    )
    notes = f" Mention this: {details.notes}." if details.notes else ""
    return "\n".join(
        [
            f"You are an automated phone assistant of {caller_business}. You are calling"
            f" {_venue(details)} on behalf of a customer, {details.customer_name}, to book a"
            f" table for {details.party_size} on {details.when()}.{notes}",
            "You have already introduced yourself and asked for the table. Keep every reply to"
            " one or two short sentences, be polite, and never invent details.",
            flexibility,
            f"If they need a contact number, give {details.callback_number}"
            f" ({spoken_number(details.callback_number)}).",
            "As soon as the result is clear, call report_outcome: 'confirmed' when they booked"
            " the wanted time, 'alternative_offered' when they offered another time (say"
            " whether you accepted it, and its time), 'declined' when they cannot book it.",
            f"If you hear a voicemail greeting, say nothing and wait: you will get the line"
            f" {VOICEMAIL_CUE!r} once the beep has sounded; then call report_outcome with"
            " 'voicemail_left' and say its 'say' text as your message.",
            "After report_outcome, say its 'say' text, then end the call with end_call once"
            " they have said goodbye.",
        ]
    )
