"""Request and response bodies of the outbound-calls API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.db.models import OutboundCallRequest
from shared.tenancy.outbound_prompt import Purpose, ReservationDetails


class OutboundCallCreate(BaseModel):
    """`POST /v1/outbound-calls`: what to call about, and optionally a gentler retry policy."""

    model_config = ConfigDict(extra="forbid")

    purpose: Purpose = Field(description="What the call is for (restaurant_reservation).")
    details: ReservationDetails
    max_retries: int | None = Field(
        None, ge=0, description="Redials after busy / no-answer; at most OUTBOUND_MAX_RETRIES."
    )
    retry_delay_s: float | None = Field(
        None,
        le=86400,
        description="Wait before the first redial (doubles after); at least"
        " OUTBOUND_MIN_RETRY_DELAY_S.",
    )


class OutboundCallView(BaseModel):
    """An outbound call request, its attempts and its outcome."""

    id: str
    purpose: str
    status: str = Field(description="queued, dialing, in_progress, retry_scheduled, completed.")
    details: dict[str, Any]
    from_number: str
    to_number: str
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None
    call_sids: list[str]
    last_call_status: str | None
    answered_by: str | None
    outcome: str | None = Field(
        description="confirmed, alternative_offered, declined, voicemail_left, no_answer,"
        " busy or failed; null until the request is completed."
    )
    outcome_details: dict[str, Any]
    webhook_event_id: str | None
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, row: OutboundCallRequest) -> OutboundCallView:
        return cls(
            id=row.id,
            purpose=row.purpose,
            status=row.status,
            details=row.details,
            from_number=row.from_number,
            to_number=row.to_number,
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            next_attempt_at=row.next_attempt_at,
            call_sids=list(row.twilio_call_sids or []),
            last_call_status=row.last_call_status,
            answered_by=row.answered_by,
            outcome=row.outcome,
            outcome_details=row.outcome_details or {},
            webhook_event_id=row.webhook_event_id,
            created_at=row.created_at,
            completed_at=row.completed_at,
        )
