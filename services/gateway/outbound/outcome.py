"""How an outbound request ends or tries again, and the `outbound.completed` webhook it queues.

The webhook is a row in `webhook_deliveries` (one per active endpoint of the tenant), written in
the same transaction that completes the request; the recorder's delivery loop signs and sends
it with retries (docs/webhooks.md). Nothing is sent inline, so a gateway restart loses nothing.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.outbound.schemas import OutboundCallView
from shared.db.base import new_id
from shared.db.models import OutboundCallRequest, WebhookDelivery, WebhookEndpoint

OUTBOUND_COMPLETED = "outbound.completed"


def event_id_for(request_id: str) -> str:
    """The stable event id of a request's completion (the same on every retry/redelivery)."""
    digest = hashlib.sha256(f"{request_id}:{OUTBOUND_COMPLETED}".encode()).hexdigest()
    return "evt_" + digest[:32]


def retry_delay_s(row: OutboundCallRequest) -> float:
    """Wait before the next attempt after `row.attempts` attempts: base x 2^(attempts-1)."""
    return float(row.retry_delay_s * 2.0 ** max(row.attempts - 1, 0))


async def retry_or_finish(
    session: AsyncSession, row: OutboundCallRequest, outcome: str, now: datetime, reason: str
) -> None:
    """Dial again later if attempts are left, else complete with `outcome`."""
    if row.attempts < row.max_attempts:
        row.status = "retry_scheduled"
        row.next_attempt_at = now + timedelta(seconds=retry_delay_s(row))
        row.last_error = reason
        return
    await finish(session, row, outcome, {"reason": reason, "attempts": row.attempts}, now)


async def finish(
    session: AsyncSession,
    row: OutboundCallRequest,
    outcome: str,
    details: dict[str, Any],
    now: datetime,
) -> None:
    """Complete the request and queue its webhook (the caller commits). Idempotent."""
    if row.status == "completed":
        return
    row.status = "completed"
    row.outcome = outcome
    row.outcome_details = details
    row.outcome_at = row.outcome_at or now
    row.completed_at = now
    row.next_attempt_at = None
    row.webhook_event_id = event_id_for(row.id)
    row.webhook_queued_at = now
    await _enqueue(session, row, now)


async def _enqueue(session: AsyncSession, row: OutboundCallRequest, now: datetime) -> None:
    event_id = event_id_for(row.id)
    payload = {
        "event_id": event_id,
        "type": OUTBOUND_COMPLETED,
        "created_at": now.isoformat(timespec="milliseconds"),
        "tenant_id": row.tenant_id,
        "outbound_call": OutboundCallView.of(row).model_dump(mode="json"),
    }
    endpoints = (
        await session.scalars(
            select(WebhookEndpoint.id).where(
                WebhookEndpoint.tenant_id == row.tenant_id, WebhookEndpoint.active.is_(True)
            )
        )
    ).all()
    last_sid = row.twilio_call_sids[-1] if row.twilio_call_sids else None
    for endpoint_id in endpoints:
        await session.execute(
            insert(WebhookDelivery)
            .values(
                id=new_id(),
                event_id=event_id,
                event_type=OUTBOUND_COMPLETED,
                endpoint_id=endpoint_id,
                tenant_id=row.tenant_id,
                call_sid=last_sid,
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at=func.now(),
            )
            .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
        )
