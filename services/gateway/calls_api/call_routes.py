"""`/v1/calls`: list and filter calls, search transcripts, one call in detail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy import func, select

from services.gateway.admin.auth import TenantId
from services.gateway.admin.params import Limit, Offset
from services.gateway.admin.schemas import AUTH_ERRORS, error_doc
from services.gateway.admin.store import Session, not_found
from services.gateway.calls_api.call_detail import load_call_detail
from services.gateway.calls_api.schemas import CallDetail, CallSummary, SearchHit
from shared.db.models import Call, TranscriptLine

router = APIRouter(prefix="/v1/calls", tags=["calls"], responses=AUTH_ERRORS)

CallSid = Annotated[
    str, Path(pattern=r"^CA[0-9a-fA-F]{32}$", description="Twilio CallSid (CA + 32 hex).")
]


@router.get("", response_model=list[CallSummary], summary="List calls")
async def list_calls(
    tenant_id: TenantId,
    session: Session,
    since: Annotated[datetime | None, Query(description="Started at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Started before (ISO 8601).")] = None,
    direction: Literal["inbound", "outbound"] | None = None,
    status: Annotated[
        str | None, Query(max_length=16, description="in-progress, completed")
    ] = None,
    end_reason: Annotated[str | None, Query(max_length=64)] = None,
    number: Annotated[
        str | None, Query(max_length=64, description="Calls from or to this number.")
    ] = None,
    transferred: Annotated[bool | None, Query(description="Only (not) transferred.")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[Call]:
    """The tenant's calls, newest first."""
    query = select(Call).where(Call.tenant_id == tenant_id)
    if since is not None:
        query = query.where(Call.started_at >= since)
    if until is not None:
        query = query.where(Call.started_at < until)
    if direction is not None:
        query = query.where(Call.direction == direction)
    if status is not None:
        query = query.where(Call.status == status)
    if end_reason is not None:
        query = query.where(Call.end_reason == end_reason)
    if number is not None:
        query = query.where((Call.from_number == number) | (Call.to_number == number))
    if transferred is not None:
        column = Call.transfer_target
        query = query.where(column.is_not(None) if transferred else column.is_(None))
    rows = await session.scalars(
        query.order_by(Call.started_at.desc(), Call.call_sid).limit(limit).offset(offset)
    )
    return list(rows.all())


@router.get("/search", response_model=list[SearchHit], summary="Search transcripts")
async def search_transcripts(
    tenant_id: TenantId,
    session: Session,
    q: Annotated[
        str, Query(min_length=1, max_length=200, description='Words, "phrases", -excluded, or.')
    ],
    limit: Limit = 50,
) -> list[SearchHit]:
    """Transcript lines matching `q` (Postgres full-text search, English), best first."""
    query = func.websearch_to_tsquery("english", q)
    rank = func.ts_rank(TranscriptLine.tsv, query)
    headline = func.ts_headline(
        "english", TranscriptLine.text, query, "StartSel=[, StopSel=], MaxFragments=2"
    )
    rows = await session.execute(
        select(
            TranscriptLine.call_sid,
            Call.started_at,
            TranscriptLine.turn_id,
            TranscriptLine.role,
            TranscriptLine.text,
            headline.label("headline"),
            rank.label("rank"),
        )
        .join(Call, Call.call_sid == TranscriptLine.call_sid)
        .where(Call.tenant_id == tenant_id, TranscriptLine.tsv.op("@@")(query))
        .order_by(rank.desc(), Call.started_at.desc(), TranscriptLine.id)
        .limit(limit)
    )
    return [
        SearchHit(
            call_sid=r.call_sid,
            started_at=r.started_at,
            turn_id=r.turn_id,
            role=r.role,
            text=r.text,
            headline=r.headline,
            rank=float(r.rank),
        )
        for r in rows.all()
    ]


@router.get(
    "/{call_sid}",
    response_model=CallDetail,
    summary="One call in detail",
    responses=error_doc(404, "No such call for this tenant."),
)
async def get_call(tenant_id: TenantId, session: Session, call_sid: CallSid) -> CallDetail:
    """Transcript with timestamps, turns with their latency waterfall, tool calls, keys,
    barge-ins, cost lines and the post-call analysis."""
    call = await session.scalar(
        select(Call).where(Call.call_sid == call_sid, Call.tenant_id == tenant_id)
    )
    if call is None:
        raise not_found("call")
    return await load_call_detail(session, call)
