"""Calls on the real speech path: the caller speaks (Piper), the platform hears it with
Whisper and answers in Piper's voice, all through services/speech. The LLM is scripted.
Asserted on what the recogniser stored in Postgres and on the call log. The short call and the
barge-in run in `make test`; the tests marked `quality` run in `make quality` (all of this file)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from frontdesk.supervisor import (
    Ports,
    Stack,
    service_env,
    speech_env,
    start_services,
    start_sims,
    start_speech,
)
from services.media.caller.barge_in import words_of
from shared.db.engine import make_engine, make_sessions
from shared.db.models import Booking, CallEvent
from shared.runtime.embedded import Embedded, child_env
from shared.tenancy.tenant_apply import apply, load_spec
from sim.bench.speech_load import word_errors
from sim.call_audio import voice_to_voice_ms
from sim.twilio_caller import (
    CallResult,
    CallScript,
    Dtmf,
    Silence,
    SpeakOver,
    TwilioCallerOptions,
    place_call,
)
from sim.twilio_webhook import new_sid
from tests.conftest import Infra, Platform
from tests.e2e.test_booking_calls import LONDON, bookings_of, next_open_weekday, policy
from tests.e2e.test_call_end_to_end import wait_for_record
from tests.e2e.test_conversation_timeline import PRICE_ANSWER, PRICES, call_log_of, llm_requests
from tests.spoken_text import segment_texts

ROOT = Path(__file__).resolve().parents[2]
BYE = "Great, thanks, bye."
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def speech_platform(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The five services, the simulators (Twilio side, scripted LLM) and the speech service,
    with media's STT and TTS both pointed at the speech service."""
    spec = load_spec(ROOT / "deploy" / "tenants" / "daves-barbershop.yaml")

    async def seed() -> None:
        engine = make_engine(infra.database_url)
        async with make_sessions(engine)() as session:
            await apply(session, spec)
        await engine.dispose()

    asyncio.run(seed())
    stack = Stack(ports=Ports.random(), log_dir=tmp_path_factory.mktemp("speech-logs"))
    embedded = Embedded(redis_url=infra.redis_url, database_url=infra.database_url)
    env = child_env(
        embedded,
        service_env(stack.ports, with_sims=True)
        | speech_env(stack.ports)
        | {
            "TWILIO_AUTH_TOKEN": "test-auth-token",
            "STREAM_TOKEN_SECRET": "test-stream-secret",
            "SILENCE_REPROMPT_S": "6",
            "SILENCE_HANGUP_S": "5",
            "FILLER_DELAY_S": "30",  # no filler: these calls script fast replies (issue 17)
        },
    )
    try:
        start_sims(stack, env, policy=str(ROOT / "sim" / "policies" / "daves_barbershop.yaml"))
        start_speech(stack, env)
        start_services(stack, env, timeout_s=180)  # next to a loaded speech service
        yield Platform(stack=stack, env=env, infra=infra, tenant_number=spec.numbers[0].e164)
    finally:
        stack.stop()


async def stored_events(platform: Platform, call_sid: str, kind: str) -> list[dict[str, Any]]:
    """The payloads of one event type of a call, as the recorder stored them in Postgres."""
    await wait_for_record(platform.infra.database_url, call_sid)
    engine = make_engine(platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            rows = await session.scalars(
                select(CallEvent.payload)
                .where(CallEvent.call_sid == call_sid, CallEvent.type == kind)
                .order_by(CallEvent.id)
            )
            return [dict(r) for r in rows]
    finally:
        await engine.dispose()


async def speak(platform: Platform, script: CallScript, pause_ms: int = 400) -> CallResult:
    options = TwilioCallerOptions(
        gateway_url=platform.gateway,
        auth_token=platform.auth_token,
        to_number=platform.tenant_number,
        call_sid=new_sid("CA"),
        tts_url=f"ws://127.0.0.1:{platform.stack.ports.speech}",
        tts_api_key=platform.env["DEEPGRAM_API_KEY"],
        answer_timeout_s=45,
        max_call_s=180,
        pause_before_speaking_ms=pause_ms,
    )
    result = await place_call(options, script)
    if result.error is not None:
        log_text = "\n".join(map(str, await trail(platform, result.call_sid)))
        raise AssertionError(f"{result.error}\n{log_text}")
    return result


async def trail(platform: Platform, call_sid: str) -> list[tuple[Any, ...]]:
    """The call log, briefly (for failure messages)."""
    return [
        (e.type, getattr(e, "turn_id", ""), getattr(e, "seq", ""), getattr(e, "text", ""),
         getattr(e, "heard_text", ""), getattr(e, "cleared", ""),
         getattr(e, "audio_start_ms", getattr(e, "audio_ms", "")), getattr(e, "trigger", ""))
        for e in await call_log_of(platform, call_sid)
        if e.type not in ("transcript.interim", "latency.mark", "usage")
    ]


async def test_a_short_call_is_heard_and_answered(speech_platform: Platform) -> None:
    result = await speak(speech_platform, CallScript(lines=[PRICES, BYE]))
    record = await wait_for_record(speech_platform.infra.database_url, result.call_sid)
    heard = [line.text for line in record.lines if line.role == "caller"]
    # The recogniser may end an utterance at a pause ("Great." / "Thanks, bye."): compare the
    # words of the whole call. Nine words: one misheard word is 11 % (Whisper tiny.en has heard
    # "the haircut" for "a haircut"); the demo's 10 % target is over its longer script.
    errors, words = word_errors(f"{PRICES} {BYE}", " ".join(heard))
    assert errors <= 1 and words == 9, heard
    agent = [line.text for line in record.lines if line.role == "agent"]
    log_text = "\n".join(map(str, await trail(speech_platform, result.call_sid)))
    assert PRICE_ANSWER[0] in " ".join(agent), log_text
    assert agent[-2:] == ["You're welcome.", "Goodbye!"], f"{agent}\n{log_text}"
    latencies = voice_to_voice_ms(result)
    assert [said for said, _ in latencies] == [PRICES, BYE]
    assert all(ms is not None and ms > 0 for _, ms in latencies), latencies


@pytest.mark.quality  # flaky in make test at the merge: see docs/self-hosted-speech.md
async def test_barge_in_on_real_speech_keeps_only_what_was_heard(
    speech_platform: Platform,
) -> None:
    interruption = "Actually, can I book for tomorrow morning instead?"
    script = CallScript(lines=[PRICES, SpeakOver(interruption, after_ms=1000), BYE])
    result = await speak(speech_platform, script)
    assert result.clears >= 1
    barges = await stored_events(speech_platform, result.call_sid, "caller.barge_in")
    assert barges and barges[0]["turn_id"] == 1
    barge = barges[0]
    played = [s.mark for s in result.agent_segments if s.played and s.mark]
    heard_marks = [m for m in played if m.startswith("t1-")]
    log = await call_log_of(speech_platform, result.call_sid)
    texts = segment_texts(log, 1)
    expected_heard = " ".join(texts[int(m.split("-s")[1])] for m in heard_marks)
    assert barge["heard_text"] == expected_heard
    assert PRICE_ANSWER[-1] not in expected_heard
    # What the caller's phone played of turn 1 is only the heard segments (the rest was dropped
    # at the clear).
    assert all(m not in played for m in barge["cleared_marks"])
    # The brain's next request holds only the heard part of the interrupted answer.
    heard_turns = [e.text for e in log if e.type == "turn.requested"]  # type: ignore[attr-defined]
    assert len(heard_turns) >= 2
    # The first request of this call holding the interruption's words answers it (a turn whose
    # answer was not heard at all joins the next one: one user message then holds both).
    def said(request: dict[str, Any]) -> str:
        return " ".join(m["content"] or "" for m in request["messages"] if m["role"] == "user")

    later = [
        r for r in await llm_requests(speech_platform)
        if heard_turns[0] in said(r) and heard_turns[1] in said(r)
    ]
    assert later, "the interruption never reached the LLM"
    for request in later[:1]:
        assistant = [m["content"] or "" for m in request["messages"] if m["role"] == "assistant"]
        log_text = "\n".join(map(str, await trail(speech_platform, result.call_sid)))
        assert PRICE_ANSWER[-1] not in " ".join(assistant), f"{assistant}\n{log_text}"
        assert expected_heard == "" or expected_heard in assistant, (expected_heard, assistant)


@pytest.mark.quality
async def test_a_backchannel_on_real_speech_does_not_interrupt(speech_platform: Platform) -> None:
    # "Uh-huh", not "mhm": espeak-ng (Piper's phonemizer) spells "Mhm." out as the letters
    # "M H M" (0.45 s of voice, three words that rightly interrupt); it has no hum for it.
    mhm = SpeakOver("Uh-huh.", after_ms=800, expect_interrupt=False)
    script = CallScript(lines=[PRICES, mhm, BYE])
    # A caller who said "uh-huh" waits for the agent to go on (the verdict comes at the
    # utterance's end): 1.5 s of quiet after the agent's audio before the next line.
    result = await speak(speech_platform, script, pause_ms=1500)
    # The onset rule may stop the agent on the first syllable (no word is known yet); the
    # verdict then undoes it: the cut sentence goes on from where it was cut. So a backchannel
    # never stands as an interruption: every clear is undone, "uh-huh" is no turn, and the
    # whole answer is heard, each sentence once.
    barges = [
        e
        for e in await stored_events(speech_platform, result.call_sid, "caller.barge_in")
        if e["turn_id"] == 1
    ]
    undone = await stored_events(speech_platform, result.call_sid, "caller.false_interrupt")
    log_text = "\n".join(map(str, await trail(speech_platform, result.call_sid)))
    assert len(barges) == len(undone), log_text
    for verdict in undone:
        print(
            f"FIGURE false interrupt on {verdict['words']!r}: went on "
            f"{verdict['resumed_from_ms']} ms into the cut sentence"
        )
        assert verdict["turn_id"] == 1 and verdict["respoken"] >= 1
    record = await wait_for_record(speech_platform.infra.database_url, result.call_sid)
    agent = [line.text for line in record.lines if line.role == "agent"]
    assert all(" ".join(agent).count(part) == 1 for part in PRICE_ANSWER), log_text
    caller = [line.text for line in record.lines if line.role == "caller"]
    assert not any(set(words_of(text)) <= {"uh", "huh"} for text in caller), caller
    # The "uh-huh" may stay in the transcript, but it asked nothing: no reply answered it.
    assert "Sorry, could you say that again?" not in agent, agent
    assert agent[-2:] == ["You're welcome.", "Goodbye!"], agent


@pytest.mark.quality
async def test_silence_on_real_speech_gets_a_reprompt_then_a_hangup(
    speech_platform: Platform,
) -> None:
    script = CallScript(lines=[PRICES, Silence(60)], hangup_after_last=False)
    result = await speak(speech_platform, script)
    assert result.hangup_by == "server"
    record = await wait_for_record(speech_platform.infra.database_url, result.call_sid)
    agent = [line.text for line in record.lines if line.role == "agent"]
    assert agent[-2:] == [
        "Are you still there?",
        "I haven't heard anything, so I'll hang up now. Goodbye!",
    ], agent
    assert record.end_reason == "agent-ended"


@pytest.mark.quality
async def test_dtmf_on_the_real_speech_path_transfers(speech_platform: Platform) -> None:
    result = await speak(speech_platform, CallScript(lines=[Dtmf("0")], hangup_after_last=False))
    assert "<Dial" in (result.after_stream_twiml or "")
    assert [p["digit"] for p in await stored_events(
        speech_platform, result.call_sid, "caller.dtmf"
    )] == ["0"]


def set_policy(platform: Platform, body: dict[str, Any]) -> None:
    port = platform.env["OPENAI_BASE_URL"].rsplit(":", 1)[1].split("/")[0]
    httpx.post(f"http://127.0.0.1:{port}/sim/policy", json=body).raise_for_status()


@pytest.mark.quality
async def test_book_reschedule_cancel_on_real_speech(speech_platform: Platform) -> None:
    """Three calls; the scripted LLM acts only when the recogniser heard its keyword."""
    day = next_open_weekday(datetime.now(LONDON).date())
    first = datetime.combine(day, time(11, 0), LONDON)
    moved = datetime.combine(day, time(16, 0), LONDON)
    db = speech_platform.infra.database_url
    engine = make_engine(db)
    sessions = make_sessions(engine)
    try:
        book = {"name": "book_appointment", "arguments": {
            "customer_name": "Alice Smith", "phone": "+447700900123", "service": "Men's Haircut",
            "start": first.strftime("%Y-%m-%dT%H:%M"), "staff": "Dave"}}
        set_policy(speech_platform, policy({"match": "book", "tool_call": book},
                                           {"book_appointment": "You're booked in with Dave."}))
        one = await speak(speech_platform, CallScript(lines=["I'd like to book a haircut.", BYE]))
        await wait_for_record(db, one.call_sid)
        [booked] = await bookings_of(sessions, [one.call_sid])
        assert booked.status == "confirmed" and booked.starts_at == first

        move = {"name": "reschedule_appointment", "arguments": {
            "booking_id": booked.id[:6], "new_start": moved.strftime("%Y-%m-%dT%H:%M")}}
        set_policy(speech_platform, policy({"match": "move", "tool_call": move},
                                           {"reschedule_appointment": "Done, it's moved."}))
        two = await speak(
            speech_platform, CallScript(lines=["Can I move my appointment to later?", BYE])
        )
        await wait_for_record(db, two.call_sid)
        [new] = await bookings_of(sessions, [two.call_sid])
        assert new.starts_at == moved and new.starts_at - first == timedelta(hours=5)

        cancel = {"name": "cancel_appointment", "arguments": {"booking_id": new.id[:6]}}
        set_policy(speech_platform, policy({"match": "cancel", "tool_call": cancel},
                                           {"cancel_appointment": "It's cancelled."}))
        three = await speak(
            speech_platform, CallScript(lines=["Please cancel my appointment.", BYE])
        )
        await wait_for_record(db, three.call_sid)
        async with sessions() as session:
            gone = await session.get(Booking, new.id)
            old = await session.get(Booking, booked.id)
        assert gone is not None and gone.status == "cancelled"
        assert old is not None and old.status == "rescheduled"
    finally:
        from sim.llm_policy import load_policy

        set_policy(speech_platform, load_policy(str(ROOT / "sim" / "policies" /
                                                     "daves_barbershop.yaml")).model_dump())
        await engine.dispose()
