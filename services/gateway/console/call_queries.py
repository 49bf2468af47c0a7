"""What the console's call pages read from Postgres: the filtered call list (with full-text
search), the overview's daily figures. `tenant_id` None means every tenant (the operator)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Date, Select, cast, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import Booking, Call, CallCost, Tenant, TranscriptLine, Turn

PAGE = 50


class CallFilters(BaseModel):
    """The calls page's query string (bad values are a 422, never a 500)."""

    model_config = ConfigDict(extra="ignore")
    q: str = Field("", max_length=200, description="Full-text search in transcripts.")
    status: str = Field("", pattern=r"^(|in-progress|completed)$")
    direction: str = Field("", pattern=r"^(|inbound|outbound)$")
    number: str = Field("", max_length=32, pattern=r"^[+0-9]*$")
    day_from: date | None = None
    day_to: date | None = None
    page: int = Field(0, ge=0, le=10_000)


@dataclass(frozen=True)
class CallRow:
    """One line of the calls list."""

    call: Call
    tenant_name: str


def _scoped(tenant_id: str | None) -> Select[Call, str]:
    query = select(Call, Tenant.name).join(Tenant, Tenant.id == Call.tenant_id)
    return query if tenant_id is None else query.where(Call.tenant_id == tenant_id)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


async def list_calls(
    session: AsyncSession, tenant_id: str | None, filters: CallFilters
) -> list[CallRow]:
    """One page of calls, newest first, matching the filters."""
    query = _scoped(tenant_id)
    if filters.status:
        query = query.where(Call.status == filters.status)
    if filters.direction:
        query = query.where(Call.direction == filters.direction)
    if filters.number:
        query = query.where(
            (Call.from_number == filters.number) | (Call.to_number == filters.number)
        )
    if filters.day_from is not None:
        query = query.where(Call.started_at >= _midnight(filters.day_from))
    if filters.day_to is not None:
        query = query.where(Call.started_at < _midnight(filters.day_to + timedelta(days=1)))
    if filters.q.strip():
        matches = TranscriptLine.tsv.op("@@")(func.websearch_to_tsquery("english", filters.q))
        query = query.where(
            select(TranscriptLine.id)
            .where(TranscriptLine.call_sid == Call.call_sid, matches)
            .exists()
        )
    rows = await session.execute(
        query.order_by(Call.started_at.desc(), Call.call_sid)
        .limit(PAGE)
        .offset(filters.page * PAGE)
    )
    return [CallRow(call, name) for call, name in rows]


async def find_call(session: AsyncSession, tenant_id: str | None, call_sid: str) -> Call | None:
    """The call if the viewer may see it (another tenant's call is None, like a missing one)."""
    query = select(Call).where(Call.call_sid == call_sid)
    if tenant_id is not None:
        query = query.where(Call.tenant_id == tenant_id)
    call: Call | None = await session.scalar(query)
    return call


async def live_calls(session: AsyncSession, tenant_id: str | None) -> list[CallRow]:
    """Calls the recorder still has as in progress (the live page checks their logs too)."""
    query = _scoped(tenant_id).where(Call.status == "in-progress")
    rows = await session.execute(query.order_by(Call.started_at.desc()).limit(200))
    return [CallRow(call, name) for call, name in rows]


@dataclass(frozen=True)
class DayFigures:
    """One day of the overview."""

    day: date
    calls: int
    booked_calls: int
    first_audio_p50_ms: float | None
    first_audio_p95_ms: float | None
    cost_per_call_minor: float | None


async def daily_figures(
    session: AsyncSession, tenant_id: str | None, days: int, today: date
) -> list[DayFigures]:
    """Calls per day, calls that made a booking, p50/p95 first-audio latency of answered turns
    (speech end to first audio sent; the greeting excluded) and mean cost per call, for the
    last `days` days up to `today` (UTC), every day present even without calls."""
    start = today - timedelta(days=days - 1)
    day = cast(func.timezone("UTC", Call.started_at), Date).label("day")
    scope = [Call.started_at >= _midnight(start)]
    if tenant_id is not None:
        scope.append(Call.tenant_id == tenant_id)
    counts = await session.execute(
        select(day, func.count(), func.count(distinct(Booking.call_sid)))
        .select_from(Call)
        .outerjoin(Booking, Booking.call_sid == Call.call_sid)
        .where(*scope)
        .group_by(day)
    )
    latency_ms = func.extract("epoch", Turn.first_audio_sent_at - Turn.speech_end_at) * 1000
    latency = await session.execute(
        select(
            day,
            func.percentile_cont(0.5).within_group(latency_ms),
            func.percentile_cont(0.95).within_group(latency_ms),
        )
        .select_from(Turn)
        .join(Call, Call.call_sid == Turn.call_sid)
        .where(*scope, Turn.turn_id > 0, Turn.first_audio_sent_at.is_not(None))
        .group_by(day)
    )
    costs = await session.execute(
        select(day, func.avg(CallCost.total_minor))
        .select_from(CallCost)
        .join(Call, Call.call_sid == CallCost.call_sid)
        .where(*scope)
        .group_by(day)
    )
    by_count = {row[0]: (int(row[1]), int(row[2])) for row in counts}
    by_latency = {row[0]: (row[1], row[2]) for row in latency}
    by_cost = {row[0]: row[1] for row in costs}
    figures = []
    for n in range(days):
        current = start + timedelta(days=n)
        calls, booked = by_count.get(current, (0, 0))
        p50, p95 = by_latency.get(current, (None, None))
        cost = by_cost.get(current)
        figures.append(
            DayFigures(
                current,
                calls,
                booked,
                None if p50 is None else round(float(p50), 1),
                None if p95 is None else round(float(p95), 1),
                None if cost is None else round(float(cost), 2),
            )
        )
    return figures
