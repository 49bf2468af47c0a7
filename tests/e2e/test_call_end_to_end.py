"""A simulated call through all five services (separate processes), asserted in Postgres and
on the audio the Twilio simulator received."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select

from shared.db.engine import make_engine, make_sessions
from shared.db.models import CallEvent, ToolInvocation, Turn
from shared.tenancy.call_records import CallRecord, load_call_record
from sim.deepgram_tts_audio import audio_bytes_for_text
from sim.twilio_caller import CallResult, CallScript, TwilioCallerOptions, place_call
from sim.twilio_webhook import new_sid
from tests.conftest import Platform

LINES = ["Hi, how much is a haircut?", "And where are you located?", "Great, thanks, bye."]
STAGES = (
    "speech_end",
    "stt_final",
    "llm_request",
    "llm_first_token",
    "first_speakable",
    "tts_first_byte",
    "first_audio_sent",
)

pytestmark = pytest.mark.e2e


async def wait_for_record(database_url: str, call_sid: str, timeout_s: float = 60) -> CallRecord:
    """Poll Postgres until the recorder has stored the whole call (bounded)."""
    engine = make_engine(database_url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            async with make_sessions(engine)() as session:
                record = await load_call_record(session, call_sid)
            if record is not None and record.status == "completed":
                return record
            assert time.monotonic() < deadline, f"call {call_sid} was not recorded"
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()


def caller_options(platform: Platform, call_sid: str | None = None) -> TwilioCallerOptions:
    return TwilioCallerOptions(
        gateway_url=platform.gateway,
        auth_token=platform.auth_token,
        to_number=platform.tenant_number,
        from_number="+447700900123",
        call_sid=call_sid or new_sid("CA"),
        stt_control_url=platform.stt_control,
    )


async def run_scripted_call(platform: Platform) -> tuple[CallResult, CallRecord]:
    result = await place_call(caller_options(platform), CallScript(lines=list(LINES)))
    assert result.error is None, result.error
    record = await wait_for_record(platform.infra.database_url, result.call_sid)
    return result, record


async def test_scripted_call_is_answered_and_recorded(platform: Platform) -> None:
    result, record = await run_scripted_call(platform)

    # --- the conversation as stored in Postgres -------------------------------------------
    assert record.end_reason == "caller-hangup"
    assert record.duration_s is not None and record.duration_s > 5
    assert [line.text for line in record.lines if line.role == "caller"] == LINES
    agent = [line.text for line in record.lines if line.role == "agent"]
    assert agent[0] == "Thanks for calling Dave's Barbershop, how can I help?"
    assert any("£25" in text for text in agent)
    assert any("123 High Street" in text for text in agent)
    assert agent[-1] == "Goodbye!"
    assert [t.name for t in record.tools] == ["get_business_info"]
    assert record.tools[0].ok and "123 High Street" in record.tools[0].result

    engine = make_engine(platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            invocation = (
                await session.scalars(
                    select(ToolInvocation).where(ToolInvocation.call_sid == result.call_sid)
                )
            ).one()
            turns = (
                await session.scalars(
                    select(Turn)
                    .where(Turn.call_sid == result.call_sid, Turn.turn_id > 0)
                    .order_by(Turn.turn_id)
                )
            ).all()
            sent = (
                await session.scalars(
                    select(CallEvent.payload)
                    .where(
                        CallEvent.call_sid == result.call_sid,
                        CallEvent.type == "audio.segment_sent",
                    )
                    .order_by(CallEvent.id)
                )
            ).all()
            n_events = await session.scalar(
                select(func.count())
                .select_from(CallEvent)
                .where(CallEvent.call_sid == result.call_sid)
            )
    finally:
        await engine.dispose()
    assert invocation.name == "get_business_info" and invocation.ok

    # --- latency plumbing: every stage of every turn, in causal order ----------------------
    assert [t.turn_id for t in turns] == [1, 2, 3]
    for turn in turns:
        stamps = [getattr(turn, f"{stage}_at") for stage in STAGES]
        assert all(s is not None for s in stamps), (turn.turn_id, stamps)
        # A preemptive reply (issue 17) asks the LLM before STT's final, on media's VAD: so
        # speech_end (STT's last word end, mapped from audio time to wall time) and stt_final
        # are ordered against each other and the first audio only (nothing is spoken before).
        causal = [
            s
            for stage, s in zip(STAGES, stamps, strict=True)
            if stage not in ("speech_end", "stt_final")
        ]
        shown = {stage: s.isoformat()[11:] for stage, s in zip(STAGES, stamps, strict=True)}
        assert causal == sorted(causal), (turn.turn_id, shown)
        assert turn.speech_end_at <= turn.stt_final_at <= turn.tts_first_byte_at, turn.turn_id

    # --- the audio Twilio received is exactly the synthesized text, all of it played -------
    expected = sum(audio_bytes_for_text(p["text"], 60.0, 8000, 1) for p in sent)
    assert len(result.agent_audio) == expected
    assert [s.mark for s in result.agent_segments if s.played] == [p["mark"] for p in sent]
    assert all(s.played for s in result.agent_segments)
    assert len(result.agent_audio) > 0 and result.agent_audio.count(0xFF) < len(result.agent_audio)
    assert n_events is not None and n_events > 20
