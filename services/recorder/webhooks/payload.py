"""The `call.completed` webhook body: call, transcript, bookings, messages, cost, analysis."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import (
    Booking,
    Call,
    CallAnalysis,
    CallCost,
    CostLineItem,
    Message,
    Service,
    TranscriptLine,
)

CALL_COMPLETED = "call.completed"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def call_completed_payload(
    session: AsyncSession, call: Call, event_id: str, recording_url: str | None = None
) -> dict[str, Any]:
    """The JSON body sent to every endpoint of the call's tenant (`recording_url`: where the
    recording is served, null when the call has none)."""
    sid = call.call_sid
    lines = (
        await session.scalars(
            select(TranscriptLine)
            .where(TranscriptLine.call_sid == sid)
            .order_by(TranscriptLine.at, TranscriptLine.id)
        )
    ).all()
    bookings = (
        await session.execute(
            select(Booking, Service.name)
            .join(Service, Service.id == Booking.service_id)
            .where(Booking.call_sid == sid)
            .order_by(Booking.created_at)
        )
    ).all()
    messages = (
        await session.scalars(
            select(Message).where(Message.call_sid == sid).order_by(Message.created_at)
        )
    ).all()
    cost = await session.get(CallCost, sid)
    cost_lines = (
        await session.scalars(
            select(CostLineItem)
            .where(CostLineItem.call_sid == sid)
            .order_by(CostLineItem.provider, CostLineItem.metric)
        )
    ).all()
    analysis = await session.get(CallAnalysis, sid)
    return {
        "event_id": event_id,
        "type": CALL_COMPLETED,
        "created_at": datetime.now(UTC).isoformat(),
        "tenant_id": call.tenant_id,
        "call": {
            "call_sid": sid,
            "direction": call.direction,
            "from": call.from_number,
            "to": call.to_number,
            "pipeline": call.pipeline,
            "started_at": _iso(call.started_at),
            "ended_at": _iso(call.ended_at),
            "duration_s": call.duration_s,
            "end_reason": call.end_reason,
            "transfer_target": call.transfer_target,
            "recording_url": recording_url,
            "recording_duration_s": call.recording_duration_s if recording_url else None,
        },
        "transcript": [
            {
                "role": line.role,
                "text": line.text,
                "turn_id": line.turn_id,
                "at": _iso(line.at),
                "start_ms": line.start_ms,
                "end_ms": line.end_ms,
                "kind": line.kind,
            }
            for line in lines
        ],
        "bookings": [
            {
                "id": booking.id,
                "service": service_name,
                "starts_at": _iso(booking.starts_at),
                "ends_at": _iso(booking.ends_at),
                "status": booking.status,
                "party_size": booking.party_size,
            }
            for booking, service_name in bookings
        ],
        "messages": [
            {
                "id": message.id,
                "caller_name": message.caller_name,
                "caller_phone": message.caller_phone,
                "body": message.body,
            }
            for message in messages
        ],
        "cost": None
        if cost is None
        else {
            "currency": cost.currency,
            "total_minor": str(cost.total_minor),
            "telephony_metered": cost.telephony_metered,
            "lines": [
                {
                    "provider": li.provider,
                    "metric": li.metric,
                    "quantity": str(li.quantity),
                    "unit_price_minor": str(li.unit_price_minor),
                    "amount_minor": str(li.amount_minor),
                }
                for li in cost_lines
            ],
        },
        "analysis": None
        if analysis is None
        else {
            "status": analysis.status,
            "summary": analysis.summary,
            "success": analysis.success,
            "fields": analysis.fields,
        },
    }
