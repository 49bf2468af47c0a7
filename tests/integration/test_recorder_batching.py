"""The recorder's batches: however a call's log is cut into transactions (one entry each, one
batch, a follower's chunks, a replay over a half-stored log), the derived rows are the same, and
derivations never see entries that come later in the log even though a batch's raw rows are
inserted at once. Group commit: a follower stores what arrives within its flush interval in one
transaction, and call.ended at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.recorder.follower import record_call
from services.recorder.memory import LogMemory
from services.recorder.persist import persist
from shared.bus.streams import CallLog
from shared.bus.waiting import within
from shared.contract import events as ev
from shared.db.models import (
    BargeInRecord,
    Call,
    DtmfPress,
    ToolInvocation,
    TranscriptLine,
    Turn,
    UsageRecord,
)
from sim.twilio_webhook import new_sid
from tests.conftest import Infra
from tests.integration.test_recorder_persistence import recorder

Entry = tuple[str, ev.Event]


def conversation(sid: str, t0: float) -> list[Entry]:
    """Three caller turns whose transcript.final / turn.requested pairs share batches, a media
    reconnect (second stream start, audio clock from zero), marks reused after it, agent text
    with stray spaces, a barge-in followed by a late mark echo, a tool call, a keypress."""
    c: dict[str, Any] = {"call_sid": sid}
    events: list[ev.Event] = [
        ev.CallStarted(**c, at=t0, from_number="+447700900123", to_number="+441632960001"),
        ev.StreamStarted(**c, at=t0 + 0.5, stream_sid="MZ1", replica="media-1"),
        ev.AgentText(**c, at=t0 + 0.6, turn_id=0, seq=0, text="Hello, Dave's."),
        ev.SegmentSent(
            **c,
            at=t0 + 0.7,
            turn_id=0,
            seq=0,
            mark="t0-s0",
            text="Hello, Dave's.",
            audio_bytes=8000,
        ),
        ev.LatencyMark(**c, at=t0 + 0.7, turn_id=0, stage="first_audio_sent", stage_at=t0 + 0.7),
        ev.SegmentPlayed(**c, at=t0 + 1.7, turn_id=0, seq=0, mark="t0-s0"),
        ev.TranscriptFinal(
            **c, at=t0 + 3.0, text="Can I book", audio_start_ms=2000, audio_end_ms=2600
        ),
        ev.TranscriptFinal(
            **c,
            at=t0 + 3.4,
            text="a haircut?",
            audio_start_ms=2700,
            audio_end_ms=3100,
            speech_final=True,
        ),
        ev.TurnRequested(**c, at=t0 + 3.5, turn_id=1, text="Can I book a haircut?"),
        ev.LatencyMark(**c, at=t0 + 3.5, turn_id=1, stage="speech_end", stage_at=t0 + 3.45),
        ev.LatencyMark(**c, at=t0 + 3.5, turn_id=1, stage="stt_final", stage_at=t0 + 3.5),
        ev.AgentText(**c, at=t0 + 3.8, turn_id=1, seq=0, text="Sure."),
        ev.LatencyMark(**c, at=t0 + 3.8, turn_id=1, stage="llm_request", stage_at=t0 + 3.55),
        ev.AgentText(**c, at=t0 + 3.9, turn_id=1, seq=1, text="  When suits you?"),
        ev.SegmentSent(
            **c, at=t0 + 3.9, turn_id=1, seq=0, mark="t1-s0", text=" Sure. ", audio_bytes=4000
        ),
        ev.SegmentSent(
            **c,
            at=t0 + 4.0,
            turn_id=1,
            seq=1,
            mark="t1-s1",
            text="When suits you?",
            audio_bytes=9600,
        ),
        ev.Usage(**c, at=t0 + 4.0, provider="gpt-x", metric="prompt_tokens", quantity=120),
        ev.Usage(**c, at=t0 + 4.0, provider="gpt-x", metric="completion_tokens", quantity=9),
        ev.SegmentPlayed(**c, at=t0 + 4.4, turn_id=1, seq=0, mark="t1-s0"),
        ev.SegmentPlayed(**c, at=t0 + 5.6, turn_id=1, seq=1, mark="t1-s1"),
        ev.TranscriptFinal(
            **c,
            at=t0 + 6.5,
            text="Tomorrow",
            audio_start_ms=6000,
            audio_end_ms=6400,
            speech_final=True,
        ),
        ev.TurnRequested(**c, at=t0 + 6.6, turn_id=2, text="Tomorrow"),
        ev.StreamStarted(**c, at=t0 + 7.0, stream_sid="MZ2", replica="media-2"),
        ev.AgentText(**c, at=t0 + 7.1, turn_id=2, seq=0, text="Great."),
        ev.SegmentSent(
            **c, at=t0 + 7.2, turn_id=2, seq=0, mark="t0-s0", text="Great.", audio_bytes=4000
        ),
        ev.SegmentSent(
            **c,
            at=t0 + 7.3,
            turn_id=2,
            seq=1,
            mark="t2-s1",
            text="Anything else?",
            audio_bytes=8000,
        ),
        ev.BargeIn(
            **c,
            at=t0 + 7.6,
            turn_id=2,
            trigger="speech",
            trigger_at=t0 + 7.55,
            heard_text="",
            cleared_marks=["t2-s1"],
        ),
        ev.SegmentPlayed(**c, at=t0 + 7.7, turn_id=2, seq=0, mark="t0-s0"),
        ev.SegmentPlayed(**c, at=t0 + 7.7, turn_id=2, seq=1, mark="t2-s1", cleared=True),
        ev.TranscriptFinal(
            **c,
            at=t0 + 8.6,
            text="No thanks",
            audio_start_ms=1000,
            audio_end_ms=1500,
            speech_final=True,
        ),
        ev.TurnRequested(**c, at=t0 + 8.7, turn_id=3, text="No thanks"),
        ev.ToolRequested(
            **c,
            at=t0 + 8.8,
            turn_id=3,
            tool_call_id=f"tc-{sid}",
            name="end_call",
            arguments='{"reason": "done"}',
        ),
        ev.ToolResult(
            **c,
            at=t0 + 8.9,
            turn_id=3,
            tool_call_id=f"tc-{sid}",
            name="end_call",
            ok=True,
            content="ok",
        ),
        ev.Dtmf(**c, at=t0 + 9.0, digit="1"),
        ev.Usage(**c, at=t0 + 9.5, provider="deepgram", metric="stt_seconds", quantity=9.5),
        ev.Usage(**c, at=t0 + 9.5, provider="deepgram", metric="tts_characters", quantity=64),
        ev.CallEnded(**c, at=t0 + 9.6, reason="caller-hangup", duration_s=9.6),
    ]
    return [(f"{int(t0 * 1000)}-{i}", e) for i, e in enumerate(events)]


async def _store(
    sessions: async_sessionmaker[AsyncSession],
    sid: str,
    batches: list[list[Entry]],
    memory: LogMemory | None = None,
) -> None:
    for batch in batches:
        async with sessions() as session:
            await persist(session, sid, batch, memory)
            await session.commit()
        if memory is not None:
            memory.committed()


async def _derived(sessions: async_sessionmaker[AsyncSession], sid: str) -> dict[str, Any]:
    """Every derived row of a call, without what differs between calls (sid, serial ids)."""

    def rows(items: Any, *skip: str) -> list[dict[str, Any]]:
        out = []
        for item in items:
            row = {k: v for k, v in vars(item).items() if not k.startswith("_")}
            for key in ("call_sid", "id", "tsv", "created_at", *skip):
                row.pop(key, None)
            out.append(row)
        return out

    async with sessions() as session:
        call = await session.get(Call, sid)
        assert call is not None
        tool = await session.get(ToolInvocation, f"tc-{sid}")
        return {
            "call": rows([call], "recorded_at", "postcall_done_at"),
            "turns": rows(
                await session.scalars(
                    select(Turn).where(Turn.call_sid == sid).order_by(Turn.turn_id)
                )
            ),
            "lines": rows(
                await session.scalars(
                    select(TranscriptLine)
                    .where(TranscriptLine.call_sid == sid)
                    .order_by(TranscriptLine.id)
                )
            ),
            "barge_ins": rows(
                await session.scalars(select(BargeInRecord).where(BargeInRecord.call_sid == sid))
            ),
            "dtmf": rows(await session.scalars(select(DtmfPress).where(DtmfPress.call_sid == sid))),
            "usage": rows(
                await session.scalars(
                    select(UsageRecord).where(UsageRecord.call_sid == sid).order_by(UsageRecord.id)
                )
            ),
            "tool": rows([tool], "tool_call_id"),
        }


async def test_every_way_of_batching_a_log_derives_the_same_rows(
    infra: Infra, call_log: CallLog
) -> None:
    t0 = round(time.time() - 120, 3)
    async with recorder(infra, call_log) as deps:
        derived = []
        ways = ("one entry per transaction", "one batch", "follower chunks", "resume", "replay")
        for way in ways:
            sid = new_sid("CA")
            log = conversation(sid, t0)
            if way == "one entry per transaction":
                await _store(deps.sessions, sid, [[entry] for entry in log])
            elif way == "one batch":
                await _store(deps.sessions, sid, [log])
            elif way == "follower chunks":
                chunks = [log[i : i + 4] for i in range(0, len(log), 4)]
                await _store(deps.sessions, sid, chunks, LogMemory(sid, from_start=True))
            elif way == "resume":  # a recorder stored a third; its successor goes on from there
                third = len(log) // 3
                await _store(deps.sessions, sid, [log[:third]])
                chunks = [log[i : i + 5] for i in range(third, len(log), 5)]
                await _store(deps.sessions, sid, chunks, LogMemory(sid))
            else:  # a recorder stored a third and died; its successor starts from the top
                await _store(deps.sessions, sid, [log[: len(log) // 3]])
                await _store(deps.sessions, sid, [log])
            derived.append(await _derived(deps.sessions, sid))

    for other in derived[1:]:
        assert other == derived[0]
    first = derived[0]
    # transcript.final then turn.requested in one batch: the span belongs to the turn requested
    # next, never to one that comes later in the log
    spans = {t["turn_id"]: (t["caller_start_ms"], t["caller_end_ms"]) for t in first["turns"]}
    assert spans == {0: (None, None), 1: (2000, 3100), 2: (6000, 6400), 3: (1000, 1500)}
    lines = [
        (x["turn_id"], x["role"], x["text"], x["start_ms"], x["end_ms"]) for x in first["lines"]
    ]
    assert lines == [
        (0, "agent", "Hello, Dave's.", 700, 1700),
        (1, "caller", "Can I book a haircut?", 2500, 3600),  # stream 1 started at 500 ms
        (1, "agent", " Sure. ", 3900, 4400),
        (1, "agent", "When suits you?", 4400, 5600),
        (2, "caller", "Tomorrow", 6500, 6900),  # stream 2 starts after this turn
        (2, "agent", "Hello, Dave's.", 6700, 7700),  # the first segment ever sent as "t0-s0"
        (3, "caller", "No thanks", 8000, 8500),  # stream 2 (7000 ms) + its audio clock
    ]
    turns = {t["turn_id"]: t for t in first["turns"]}
    assert turns[1]["agent_text"] == "Sure. When suits you?"
    assert turns[1]["heard_text"] == "Sure. When suits you?"
    assert turns[2]["barged_in"] and turns[2]["heard_text"] == "Hello, Dave's."
    assert turns[1]["caller_text"] == "Can I book a haircut?"
    assert turns[1]["llm_request_at"] is not None and turns[0]["first_audio_sent_at"] is not None
    assert first["tool"][0]["duration_ms"] == 100.0
    assert first["tool"][0]["arguments"] == {"reason": "done"}
    call = first["call"][0]
    assert (call["status"], call["stt_provider"], call["llm_provider"], call["tts_provider"]) == (
        "completed",
        "deepgram",
        "gpt-x",
        "deepgram",
    )


async def _transactions(sessions: async_sessionmaker[AsyncSession], sid: str) -> dict[str, str]:
    """entry id -> id of the transaction that stored it."""
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT entry_id, xmin::text FROM call_events WHERE call_sid = :sid"),
            {"sid": sid},
        )
        return {entry_id: xid for entry_id, xid in rows}


async def test_a_follower_stores_what_arrives_within_its_flush_interval_together(
    infra: Infra, call_log: CallLog
) -> None:
    sid = new_sid("CA")
    log = [event for _, event in conversation(sid, time.time())]
    async with recorder(infra, call_log) as deps:
        deps.flush_s = 3600.0  # only MAX_BATCH or call.ended ends a batch
        watch = await deps.mux.subscribe(call_log.key(sid))
        recording = asyncio.create_task(record_call(deps, sid))
        ids = []
        for event in log:  # one at a time: each is read before the next is written
            ids.append(await call_log.append(event))
            delivered = await watch.next(30)
            assert delivered is not None and delivered[0] == ids[-1]
        await within(recording, 60)  # call.ended ends the batch at once (not in an hour)
        await deps.mux.unsubscribe(watch)
        stored = await _transactions(deps.sessions, sid)
        async with deps.sessions() as session:
            cursor = await session.scalar(select(Call.last_entry_id).where(Call.call_sid == sid))
    assert sorted(stored) == sorted(ids) and cursor == ids[-1]
    assert len(set(stored.values())) == 1  # the whole call in one transaction


async def test_a_follower_flushes_when_its_interval_is_over(
    infra: Infra, call_log: CallLog
) -> None:
    sid = new_sid("CA")
    log = [event for _, event in conversation(sid, time.time())]
    async with recorder(infra, call_log) as deps:
        deps.flush_s = 0.2
        recording = asyncio.create_task(record_call(deps, sid))
        ids = [await call_log.append(event) for event in log[:-1]]
        deadline = time.monotonic() + 30
        while True:  # no call.ended yet: stored once the interval is over
            async with deps.sessions() as session:
                call = await session.get(Call, sid)
            if call is not None and call.last_entry_id == ids[-1]:
                break
            assert time.monotonic() < deadline, "entries without call.ended never stored"
            await asyncio.sleep(0.05)
        assert call.status == "in-progress" and not recording.done()
        ids.append(await call_log.append(log[-1]))
        await within(recording, 60)
        stored = await _transactions(deps.sessions, sid)
    assert sorted(stored) == sorted(ids)
    assert stored[ids[-1]] not in {stored[i] for i in ids[:-1]}  # call.ended: a later one
