"""Response models of what callers created: bookings (with their customer) and messages."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from services.gateway.admin.schemas import OutputModel


class CustomerOut(OutputModel):
    """The caller a booking is for."""

    id: str = Field(description="Customer id.")
    phone: str = Field(description="Caller's phone number, E.164.")
    name: str = Field(description="Name the caller gave (may be empty).")


class BookingOut(OutputModel):
    """An appointment on one staff member."""

    id: str = Field(description="Booking id.")
    status: str = Field(description="confirmed, cancelled, ...")
    starts_at: datetime = Field(description="Start, with offset.")
    ends_at: datetime = Field(description="End of the service (without buffer), with offset.")
    customer: CustomerOut = Field(description="Who the booking is for.")
    service_id: str = Field(description="Booked service id.")
    service_name: str = Field(description="Booked service name.")
    staff_id: int = Field(description="Staff member (resource) the booking occupies.")
    staff_name: str = Field(description="Staff member name.")
    party_size: int = Field(description="People in the party.")
    notes: str = Field(description="Notes taken with the booking.")
    call_sid: str | None = Field(description="Call that made the booking, if any.")
    created_at: datetime = Field(description="When the booking was made.")
    updated_at: datetime = Field(description="Last change.")


class MessageOut(OutputModel):
    """A message a caller left for the business."""

    id: str = Field(description="Message id.")
    caller_phone: str = Field(description="Caller's phone number (may be empty).")
    caller_name: str = Field(description="Name the caller gave (may be empty).")
    body: str = Field(description="The message.")
    read: bool = Field(description="Whether someone marked it read.")
    call_sid: str | None = Field(description="Call the message was left on, if any.")
    created_at: datetime = Field(description="When it was left.")
