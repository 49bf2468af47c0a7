"""After call.ended is stored: analysis, cost, then the `call.completed` webhook (each step
idempotent, so a replica that resumes a half-done call just finishes it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from openai import AsyncOpenAI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.recorder.analysis import analyse_call
from services.recorder.costing import compute_call_cost
from services.recorder.recordings.finish import finish_recording, recording_url
from services.recorder.webhooks.delivery import Deliverer, enqueue
from services.recorder.webhooks.payload import CALL_COMPLETED, call_completed_payload
from services.recorder.webhooks.signing import event_id_for
from shared.db.models import Call, CallCost
from shared.observability.metrics import Metrics
from shared.recordings.store import RecordingStore
from shared.runtime.settings import Settings
from shared.tenancy.pricing import PriceBook, PriceTable


@dataclass
class PostCallDeps:
    """What post-call work needs."""

    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    prices: PriceTable | PriceBook
    llm: AsyncOpenAI | None
    deliverer: Deliverer | None
    metrics: Metrics = field(default_factory=Metrics)  # this replica's Prometheus metrics
    recordings: RecordingStore | None = None  # call recordings (issue 16); None: off


async def _recorded_call(deps: PostCallDeps, call_sid: str) -> Call | None:
    async with deps.sessions() as session:
        call = await session.get(Call, call_sid)
    return call if call is not None and call.status == "completed" else None


async def run_postcall(deps: PostCallDeps, call_sid: str) -> None:
    """Analyse, cost and announce a recorded call, unless that was done already."""
    call = await _recorded_call(deps, call_sid)
    if call is None or call.postcall_done_at is not None:
        return
    if deps.recordings is not None:
        call = await finish_recording(deps.sessions, deps.recordings, call)
    if deps.llm is not None and deps.settings.analysis_enabled:
        async with deps.sessions() as session:
            await analyse_call(session, deps.llm, deps.settings, call_sid, call.tenant_id)
            await session.commit()
    async with deps.sessions() as session:
        cost = await compute_call_cost(session, call_sid, deps.prices)
        currency = await session.scalar(
            select(CallCost.currency).where(CallCost.call_sid == call_sid)
        )
        await session.commit()
    if cost is not None and currency is not None:
        deps.metrics.call_cost.labels(currency).inc(float(cost))
    queued = 0
    async with deps.sessions() as session:
        if call.tenant_id is not None:
            event_id = event_id_for(call_sid, CALL_COMPLETED)
            url = recording_url(deps.settings.public_gateway_url, call)
            payload = await call_completed_payload(session, call, event_id, url)
            queued = await enqueue(
                session, call.tenant_id, event_id, CALL_COMPLETED, call_sid, payload
            )
        await session.execute(
            update(Call).where(Call.call_sid == call_sid).values(postcall_done_at=func.now())
        )
        await session.commit()
    if queued and deps.deliverer is not None:
        deps.deliverer.wake()


async def recost(deps: PostCallDeps, call_sid: str) -> None:
    """Usage arrived after the call (telephony minutes): price the recorded call again."""
    if await _recorded_call(deps, call_sid) is None:
        return  # post-call work will price it with everything stored by then
    async with deps.sessions() as session:
        await compute_call_cost(session, call_sid, deps.prices)
        await session.commit()
