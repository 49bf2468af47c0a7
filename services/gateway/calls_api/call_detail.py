"""Load one call's full record for the API (tenant-checked by the caller)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.calls_api.schemas import (
    AnalysisOut,
    BargeInOut,
    CallDetail,
    CallSummary,
    CostLineOut,
    CostOut,
    KeyPressOut,
    ToolCallOut,
    TranscriptLineOut,
    TurnOut,
)
from shared.db.models import (
    BargeInRecord,
    Call,
    CallAnalysis,
    CallCost,
    CostLineItem,
    DtmfPress,
    ToolInvocation,
    TranscriptLine,
    Turn,
)
from shared.tenancy.pricing import price_basis

STAGES = (
    "stt_final",
    "llm_request",
    "llm_first_token",
    "first_speakable",
    "tts_first_byte",
    "first_audio_sent",
)
COMPONENTS = {  # component: (from stage, to stage)
    "stt": ("speech_end", "stt_final"),
    "llm": ("llm_request", "llm_first_token"),
    "tts": ("first_speakable", "tts_first_byte"),
    "total": ("speech_end", "first_audio_sent"),
}


def _ms(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return round((later - earlier).total_seconds() * 1000, 1)


def waterfall(turn: Turn) -> tuple[dict[str, float], dict[str, float]]:
    """(each stage in ms after speech end, each component's duration in ms)."""
    stages: dict[str, float] = {}
    for stage in STAGES:
        value = _ms(getattr(turn, f"{stage}_at"), turn.speech_end_at)
        if value is not None:
            stages[stage] = value
    components: dict[str, float] = {}
    for name, (start, end) in COMPONENTS.items():
        value = _ms(getattr(turn, f"{end}_at"), getattr(turn, f"{start}_at"))
        if value is not None:
            components[name] = value
    return stages, components


async def load_call_detail(session: AsyncSession, call: Call) -> CallDetail:
    """The call with transcript, turns, tools, keys, barge-ins, cost and analysis."""
    sid = call.call_sid
    lines = (
        await session.scalars(
            select(TranscriptLine)
            .where(TranscriptLine.call_sid == sid)
            .order_by(TranscriptLine.at, TranscriptLine.id)
        )
    ).all()
    turns = (
        await session.scalars(select(Turn).where(Turn.call_sid == sid).order_by(Turn.turn_id))
    ).all()
    tools = (
        await session.scalars(
            select(ToolInvocation)
            .where(ToolInvocation.call_sid == sid)
            .order_by(ToolInvocation.created_at)
        )
    ).all()
    keys = (
        await session.scalars(
            select(DtmfPress).where(DtmfPress.call_sid == sid).order_by(DtmfPress.at)
        )
    ).all()
    barge_ins = (
        await session.scalars(
            select(BargeInRecord).where(BargeInRecord.call_sid == sid).order_by(BargeInRecord.at)
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
    turn_rows = []
    for turn in turns:
        stages, components = waterfall(turn)
        turn_rows.append(
            TurnOut(
                turn_id=turn.turn_id,
                caller_text=turn.caller_text,
                agent_text=turn.agent_text,
                heard_text=turn.heard_text,
                barged_in=turn.barged_in,
                caller_start_ms=turn.caller_start_ms,
                caller_end_ms=turn.caller_end_ms,
                stages_ms=stages,
                components_ms=components,
            )
        )
    return CallDetail(
        **CallSummary.model_validate(call).model_dump(),
        transcript=[TranscriptLineOut.model_validate(x) for x in lines],
        turns=turn_rows,
        tool_calls=[ToolCallOut.model_validate(x) for x in tools],
        dtmf=[KeyPressOut.model_validate(x) for x in keys],
        barge_ins=[BargeInOut.model_validate(x) for x in barge_ins],
        cost=None
        if cost is None
        else CostOut(
            currency=cost.currency,
            total_minor=str(cost.total_minor),
            telephony_metered=cost.telephony_metered,
            lines=[
                CostLineOut(
                    provider=li.provider,
                    metric=li.metric,
                    quantity=str(li.quantity),
                    unit_price_minor=str(li.unit_price_minor),
                    amount_minor=str(li.amount_minor),
                    priced=li.priced,
                    currency=li.currency,
                    basis=price_basis(li.provider),
                )
                for li in cost_lines
            ],
        ),
        analysis=AnalysisOut.model_validate(analysis) if analysis is not None else None,
    )
