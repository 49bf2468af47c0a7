"""The recorder's view of fillers and undone barge-ins (issue 17), on real Redis and Postgres.

- A filler's played segment is a transcript line of kind `filler`, not part of the turn's
  heard text; a filler cut before it was heard is no line at all.
- A barge-in that media undid (`caller.false_interrupt`: only "mhm" followed, the cut
  sentences were spoken again) leaves the turn not `barged_in`, counted in
  `false_interrupts`, its `barge_ins` row `undone`; a real barge-in after it on the same turn
  is stored as one. The same rows result when the entries arrive in separate batches.
"""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.recorder.follower import record_call
from services.recorder.persist import persist
from shared.bus.streams import CallLog
from shared.contract import events as ev
from shared.db.models import BargeInRecord, TranscriptLine, Turn
from sim.twilio_webhook import new_sid
from tests.conftest import Infra
from tests.integration.test_recorder_persistence import make_tenant, recorder


def _common(sid: str, tenant_id: str) -> dict[str, str]:
    return {"call_sid": sid, "tenant_id": tenant_id}


def _segment(c: dict[str, str], at: float, turn: int, seq: int, text: str) -> list[ev.Event]:
    """A segment sent then heard whole."""
    mark = f"t{turn}-s{seq}"
    return [
        ev.SegmentSent(
            **c,
            at=at,
            turn_id=turn,
            seq=seq,
            mark=mark,
            text=text,
            audio_bytes=4000,
            filler=seq < 0,
            cached=seq < 0,
        ),
        ev.SegmentPlayed(**c, at=at + 0.5, turn_id=turn, seq=seq, mark=mark),
    ]


def filler_call(sid: str, tenant_id: str, t0: float) -> list[ev.Event]:
    """Turn 1: a filler heard, then the reply. Turn 2: a filler cut by the caller."""
    c = _common(sid, tenant_id)
    return [
        ev.CallStarted(**c, at=t0, from_number="+447700900123", to_number="+441632960001"),
        ev.StreamStarted(**c, at=t0 + 0.1, stream_sid="MZ1", replica="media-1"),
        ev.TurnRequested(**c, at=t0 + 1.0, turn_id=1, text="How much is a haircut?"),
        ev.AgentFiller(**c, at=t0 + 2.2, turn_id=1, seq=-1, text="One moment.", waited_ms=1200),
        *_segment(c, t0 + 2.2, 1, -1, "One moment."),
        ev.AgentText(**c, at=t0 + 3.0, turn_id=1, seq=0, text="It is £25."),
        *_segment(c, t0 + 3.1, 1, 0, "It is £25."),
        ev.AgentTurnDone(**c, at=t0 + 3.2, turn_id=1, chunks=1),
        ev.TurnRequested(**c, at=t0 + 5.0, turn_id=2, text="And a beard trim?"),
        ev.AgentFiller(**c, at=t0 + 6.2, turn_id=2, seq=-1, text="One moment.", waited_ms=1200),
        ev.SegmentSent(
            **c,
            at=t0 + 6.2,
            turn_id=2,
            seq=-1,
            mark="t2-s-1",
            text="One moment.",
            audio_bytes=4000,
            filler=True,
            cached=True,
        ),
        ev.BargeIn(
            **c,
            at=t0 + 6.4,
            turn_id=2,
            trigger="vad:onset",
            trigger_at=t0 + 6.35,
            heard_text="",
            cleared_marks=["t2-s-1"],
        ),
        ev.SegmentPlayed(**c, at=t0 + 6.5, turn_id=2, seq=-1, mark="t2-s-1", cleared=True),
        ev.CallEnded(**c, at=t0 + 8.0, reason="caller-hangup", duration_s=8.0),
    ]


async def test_a_heard_filler_is_a_filler_line_and_a_cut_one_is_none(
    infra: Infra, call_log: CallLog
) -> None:
    sid = new_sid("CA")
    async with recorder(infra, call_log) as deps:
        tenant_id = await make_tenant(deps.sessions)
        for event in filler_call(sid, tenant_id, time.time() - 60):
            await call_log.append(event)
        await record_call(deps, sid)
        async with deps.sessions() as session:
            lines = (
                await session.scalars(
                    select(TranscriptLine)
                    .where(TranscriptLine.call_sid == sid)
                    .order_by(TranscriptLine.at, TranscriptLine.id)
                )
            ).all()
            turns = {
                t.turn_id: t
                for t in (await session.scalars(select(Turn).where(Turn.call_sid == sid))).all()
            }
    assert [(x.turn_id, x.role, x.kind, x.text) for x in lines] == [
        (1, "caller", "speech", "How much is a haircut?"),
        (1, "agent", "filler", "One moment."),
        (1, "agent", "speech", "It is £25."),
        (2, "caller", "speech", "And a beard trim?"),
    ]
    assert turns[1].heard_text == "It is £25." and turns[1].agent_text == "It is £25."
    assert turns[2].heard_text == "" and turns[2].barged_in


def false_interrupt_call(sid: str, tenant_id: str, t0: float) -> list[ev.Event]:
    """Turn 1: cut by "mhm", undone, the cut sentence spoken again. Turn 2: cut by "mhm"
    (undone), then cut for real."""
    c = _common(sid, tenant_id)
    return [
        ev.CallStarted(**c, at=t0, from_number="+447700900123", to_number="+441632960001"),
        ev.StreamStarted(**c, at=t0 + 0.1, stream_sid="MZ1", replica="media-1"),
        ev.TurnRequested(**c, at=t0 + 1.0, turn_id=1, text="What are your hours?"),
        ev.AgentText(**c, at=t0 + 1.5, turn_id=1, seq=0, text="We open at nine."),
        ev.AgentText(**c, at=t0 + 1.6, turn_id=1, seq=1, text="We close at half five."),
        *_segment(c, t0 + 1.7, 1, 0, "We open at nine."),
        ev.SegmentSent(
            **c,
            at=t0 + 2.3,
            turn_id=1,
            seq=1,
            mark="t1-s1",
            text="We close at half five.",
            audio_bytes=9000,
        ),
        ev.BargeIn(
            **c,
            at=t0 + 2.5,
            turn_id=1,
            trigger="vad:onset",
            trigger_at=t0 + 2.45,
            heard_text="We open at nine.",
            cleared_marks=["t1-s1"],
        ),
        ev.SegmentPlayed(**c, at=t0 + 2.6, turn_id=1, seq=1, mark="t1-s1", cleared=True),
        ev.FalseInterrupt(
            **c, at=t0 + 3.2, turn_id=1, trigger_audio_ms=2400, words="mhm", respoken=1
        ),
        *_segment(c, t0 + 3.3, 1, 1, "We close at half five."),
        ev.TurnRequested(**c, at=t0 + 5.0, turn_id=2, text="Are you open Sunday?"),
        ev.AgentText(**c, at=t0 + 5.5, turn_id=2, seq=0, text="No, we are closed on Sundays."),
        ev.SegmentSent(
            **c,
            at=t0 + 5.6,
            turn_id=2,
            seq=0,
            mark="t2-s0",
            text="No, we are closed on Sundays.",
            audio_bytes=9000,
        ),
        ev.BargeIn(
            **c,
            at=t0 + 5.8,
            turn_id=2,
            trigger="vad:onset",
            trigger_at=t0 + 5.75,
            heard_text="",
            cleared_marks=["t2-s0"],
        ),
        ev.FalseInterrupt(
            **c, at=t0 + 6.5, turn_id=2, trigger_audio_ms=5700, words="okay", respoken=1
        ),
        ev.BargeIn(
            **c,
            at=t0 + 7.0,
            turn_id=2,
            trigger="stt:words",
            trigger_at=t0 + 6.95,
            heard_text="",
            cleared_marks=["t2-s0"],
        ),
        ev.CallEnded(**c, at=t0 + 9.0, reason="caller-hangup", duration_s=9.0),
    ]


async def _stored(
    sessions: async_sessionmaker[AsyncSession], sid: str
) -> tuple[dict[int, Turn], dict[int, bool]]:
    async with sessions() as session:
        turns = {
            t.turn_id: t
            for t in (await session.scalars(select(Turn).where(Turn.call_sid == sid))).all()
        }
        barges = {
            b.turn_id: b.undone
            for b in (
                await session.scalars(select(BargeInRecord).where(BargeInRecord.call_sid == sid))
            ).all()
        }
    return turns, barges


async def test_an_undone_barge_in_is_no_barge_in(infra: Infra, call_log: CallLog) -> None:
    whole, split = new_sid("CA"), new_sid("CA")
    t0 = time.time() - 60
    async with recorder(infra, call_log) as deps:
        tenant_id = await make_tenant(deps.sessions)
        for sid in (whole, split):
            for event in false_interrupt_call(sid, tenant_id, t0):
                await call_log.append(event)
        await record_call(deps, whole)
        # The other copy in batches cut between each barge-in and its false interrupt.
        entries = await call_log.entries(split)
        cuts = [i for i, (_, e) in enumerate(entries) if isinstance(e, ev.FalseInterrupt)]
        start = 0
        for cut in [*cuts, len(entries)]:
            async with deps.sessions() as session:
                await persist(session, split, entries[start:cut])
                await session.commit()
            start = cut
        for sid in (whole, split):
            turns, barges = await _stored(deps.sessions, sid)
            # Turn 1: the "mhm" was no interruption; the whole reply was heard in the end.
            assert not turns[1].barged_in and turns[1].false_interrupts == 1
            assert turns[1].heard_text == "We open at nine. We close at half five."
            assert barges[1] is True  # the row stays, marked undone
            # Turn 2: one undone, then a real barge-in: barged in, one false interrupt.
            assert turns[2].barged_in and turns[2].false_interrupts == 1
            assert barges[2] is False
