"""The recorder against real Redis and Postgres: every kind of fact a call holds becomes rows,
once, however often the log is replayed; the stream expires only after call.ended is stored."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.recorder.follower import RecorderDeps, record_call
from services.recorder.persist import persist
from services.recorder.postcall import PostCallDeps
from shared.bus.mux import StreamMux
from shared.bus.streams import CallLog
from shared.contract import events as ev
from shared.db.engine import make_engine, make_sessions
from shared.db.models import (
    BargeInRecord,
    Call,
    CallEvent,
    DtmfPress,
    Tenant,
    ToolInvocation,
    TranscriptLine,
    Turn,
    UsageRecord,
)
from shared.runtime.settings import Settings
from shared.tenancy.pricing import EXAMPLE_PRICES, PriceTable
from sim.twilio_webhook import new_sid
from tests.conftest import Infra

TRANSFER_TO = "+441632960999"


@asynccontextmanager
async def recorder(
    infra: Infra, call_log: CallLog, prices: PriceTable = EXAMPLE_PRICES
) -> AsyncIterator[RecorderDeps]:
    """Recorder dependencies in this process (no LLM, no webhook loop)."""
    engine = make_engine(infra.database_url)
    mux = StreamMux.from_url(infra.redis_url, block_ms=2000)
    sessions = make_sessions(engine)
    postcall = PostCallDeps(
        sessions=sessions, settings=Settings(), prices=prices, llm=None, deliverer=None
    )
    try:
        yield RecorderDeps(
            log=call_log, mux=mux, sessions=sessions, stream_ttl_s=600, postcall=postcall
        )
    finally:
        await mux.close()
        await engine.dispose()


async def make_tenant(sessions: async_sessionmaker[AsyncSession], tz: str = "UTC") -> str:
    """A fresh tenant row; returns its id."""
    slug = "t-" + uuid.uuid4().hex[:10]
    async with sessions() as session:
        tenant = Tenant(slug=slug, name=f"Tenant {slug}", timezone=tz)
        session.add(tenant)
        await session.commit()
        return tenant.id


def scripted_call(sid: str, tenant_id: str, t0: float) -> list[ev.Event]:
    """A call with a greeting, a tool error, a barge-in, a keypress, a transfer and usage."""
    common = {"call_sid": sid, "tenant_id": tenant_id}
    return [
        ev.CallStarted(**common, at=t0, from_number="+447700900123", to_number="+441632960001"),
        ev.StreamStarted(**common, at=t0 + 0.5, stream_sid="MZ1", replica="media-1"),
        ev.AgentText(**common, at=t0 + 0.6, turn_id=0, seq=0, text="Hello, Dave's."),
        ev.SegmentSent(
            **common,
            at=t0 + 0.8,
            turn_id=0,
            seq=0,
            mark="m0",
            text="Hello, Dave's.",
            audio_bytes=8000,
        ),
        ev.SegmentPlayed(**common, at=t0 + 1.7, turn_id=0, seq=0, mark="m0"),
        ev.TranscriptFinal(
            **common, at=t0 + 3.0, text="Can I book", audio_start_ms=2000, audio_end_ms=2600
        ),
        ev.TranscriptFinal(
            **common,
            at=t0 + 3.4,
            text="a haircut?",
            audio_start_ms=2700,
            audio_end_ms=3100,
            speech_final=True,
        ),
        ev.TurnRequested(**common, at=t0 + 3.5, turn_id=1, text="Can I book a haircut?"),
        ev.LatencyMark(**common, at=t0 + 3.5, turn_id=1, stage="speech_end", stage_at=t0 + 3.6),
        ev.LatencyMark(**common, at=t0 + 3.6, turn_id=1, stage="stt_final", stage_at=t0 + 3.8),
        ev.Usage(**common, at=t0 + 4.0, provider="gpt-x", metric="prompt_tokens", quantity=120),
        ev.Usage(**common, at=t0 + 4.0, provider="gpt-x", metric="completion_tokens", quantity=9),
        ev.ToolRequested(
            **common,
            at=t0 + 4.0,
            turn_id=1,
            tool_call_id=f"tc-{sid}",
            name="find_slots",
            arguments='{"service": "haircut"}',
        ),
        ev.ToolResult(
            **common,
            at=t0 + 4.25,
            turn_id=1,
            tool_call_id=f"tc-{sid}",
            name="find_slots",
            ok=False,
            content='{"error": "calendar down"}',
        ),
        ev.AgentText(**common, at=t0 + 4.5, turn_id=1, seq=0, text="Sorry."),
        ev.AgentText(**common, at=t0 + 4.6, turn_id=1, seq=1, text="Our calendar is down."),
        ev.SegmentSent(
            **common, at=t0 + 4.7, turn_id=1, seq=0, mark="m1", text="Sorry.", audio_bytes=4000
        ),
        ev.SegmentPlayed(**common, at=t0 + 5.2, turn_id=1, seq=0, mark="m1"),
        ev.SegmentSent(
            **common,
            at=t0 + 5.3,
            turn_id=1,
            seq=1,
            mark="m2",
            text="Our calendar is down.",
            audio_bytes=9000,
        ),
        ev.BargeIn(
            **common,
            at=t0 + 5.6,
            turn_id=1,
            trigger="speech",
            trigger_at=t0 + 5.5,
            heard_text="Sorry.",
            cleared_marks=["m2"],
        ),
        ev.SegmentPlayed(**common, at=t0 + 5.7, turn_id=1, seq=1, mark="m2", cleared=True),
        ev.Dtmf(**common, at=t0 + 6.0, digit="0"),
        ev.CallIntent(**common, at=t0 + 6.1, kind="transfer", target=TRANSFER_TO),
        ev.Usage(**common, at=t0 + 7.0, provider="deepgram", metric="stt_seconds", quantity=6.48),
        ev.Usage(**common, at=t0 + 7.0, provider="deepgram", metric="tts_characters", quantity=41),
        ev.CallEnded(**common, at=t0 + 7.1, reason="transferred", duration_s=7.1),
    ]


async def _counts(session: AsyncSession, sid: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, model in {
        "events": CallEvent,
        "lines": TranscriptLine,
        "turns": Turn,
        "dtmf": DtmfPress,
        "barge_ins": BargeInRecord,
        "usage": UsageRecord,
        "tools": ToolInvocation,
    }.items():
        column = getattr(model, "call_sid")  # noqa: B009
        out[name] = int(
            await session.scalar(select(func.count()).select_from(model).where(column == sid)) or 0
        )
    return out


async def test_every_fact_of_a_call_is_stored(
    infra: Infra, call_log: CallLog, redis: Redis
) -> None:
    sid = new_sid("CA")
    t0 = time.time() - 60
    async with recorder(infra, call_log) as deps:
        tenant_id = await make_tenant(deps.sessions)
        for event in scripted_call(sid, tenant_id, t0):
            await call_log.append(event)
        assert await redis.ttl(call_log.key(sid)) == -1  # not recorded yet: no expiry
        await record_call(deps, sid)
        async with deps.sessions() as session:
            call = await session.get(Call, sid)
            turns = {
                t.turn_id: t
                for t in (await session.scalars(select(Turn).where(Turn.call_sid == sid))).all()
            }
            lines = (
                await session.scalars(
                    select(TranscriptLine)
                    .where(TranscriptLine.call_sid == sid)
                    .order_by(TranscriptLine.at)
                )
            ).all()
            tool = await session.get(ToolInvocation, f"tc-{sid}")
            dtmf = (await session.scalars(select(DtmfPress).where(DtmfPress.call_sid == sid))).all()
            barge = await session.get(BargeInRecord, (sid, 1))
            usage = (
                await session.execute(
                    select(UsageRecord.provider, UsageRecord.metric, UsageRecord.quantity).where(
                        UsageRecord.call_sid == sid
                    )
                )
            ).all()
    assert 0 < await redis.ttl(call_log.key(sid)) <= 600  # expired only after storing

    assert call is not None
    assert (call.status, call.end_reason, call.transfer_target) == (
        "completed",
        "transferred",
        TRANSFER_TO,
    )
    assert (call.stt_provider, call.llm_provider, call.tts_provider) == (
        "deepgram",
        "gpt-x",
        "deepgram",
    )
    assert call.recorded_at is not None and call.postcall_done_at is not None

    # speaker, text, offsets from the call's start (caller: stream start + audio clock)
    assert [(x.role, x.text, x.start_ms, x.end_ms) for x in lines] == [
        ("agent", "Hello, Dave's.", 700, 1700),
        ("caller", "Can I book a haircut?", 2500, 3600),
        ("agent", "Sorry.", 4700, 5200),
    ]
    turn = turns[1]
    assert (turn.caller_start_ms, turn.caller_end_ms) == (2000, 3100)
    assert turn.agent_text == "Sorry. Our calendar is down."
    assert turn.heard_text == "Sorry." and turn.barged_in
    assert turn.speech_end_at is not None and turn.stt_final_at is not None
    assert round((turn.stt_final_at - turn.speech_end_at).total_seconds(), 3) == 0.2
    assert not turns[0].barged_in and turns[0].heard_text == "Hello, Dave's."

    assert tool is not None and tool.name == "find_slots" and not tool.ok
    assert tool.arguments == {"service": "haircut"}
    assert tool.duration_ms == 250.0 and tool.error == '{"error": "calendar down"}'
    assert [(d.digit, d.offset_ms) for d in dtmf] == [("0", 6000)]
    assert barge is not None and barge.offset_ms == 5500
    assert sorted((p, m, q) for p, m, q in usage) == [
        ("deepgram", "stt_seconds", Decimal("6.480000")),
        ("deepgram", "tts_characters", Decimal("41.000000")),
        ("gpt-x", "completion_tokens", Decimal("9.000000")),
        ("gpt-x", "prompt_tokens", Decimal("120.000000")),
    ]


async def test_replaying_the_log_writes_nothing_twice(infra: Infra, call_log: CallLog) -> None:
    sid = new_sid("CA")
    async with recorder(infra, call_log) as deps:
        tenant_id = await make_tenant(deps.sessions)
        for event in scripted_call(sid, tenant_id, time.time() - 60):
            await call_log.append(event)
        entries = await call_log.entries(sid)
        half = len(entries) // 2
        async with deps.sessions() as session:  # a recorder that stored half, then died
            await persist(session, sid, entries[:half])
            await session.commit()
        async with deps.sessions() as session:  # its successor replays from the start
            assert await persist(session, sid, entries)
            await session.commit()
        async with deps.sessions() as session:
            once = await _counts(session, sid)
            turn = await session.get(Turn, (sid, 1))
        await record_call(deps, sid)  # the work item again: call already stored
        async with deps.sessions() as session:
            assert await _counts(session, sid) == once
    assert once == {
        "events": len(entries),
        "lines": 3,
        "turns": 2,
        "dtmf": 1,
        "barge_ins": 1,
        "usage": 4,
        "tools": 1,
    }
    assert turn is not None and turn.agent_text == "Sorry. Our calendar is down."
