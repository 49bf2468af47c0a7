"""A voice-agent call that moved to another media replica: what the new agent session is told
(services/media/voice_agents/resume.py) and how both providers' first messages carry it."""

from __future__ import annotations

from services.media.voice_agents.deepgram_settings import settings_message
from services.media.voice_agents.elevenlabs_convai import initiation
from services.media.voice_agents.resume import Resumed, resumed_from
from shared.contract import events as ev
from shared.runtime.settings import Settings

SID = "CA1"
GREETING = "Thanks for calling, how can I help?"
STARTED = ev.CallStarted(
    call_sid=SID,
    from_number="+447700900123",
    to_number="+441632960002",
    pipeline="deepgram-agent",
    greeting=GREETING,
    system_prompt="You are the receptionist.",
)


def log(*events: ev.Event) -> list[tuple[str, ev.Event]]:
    return [(f"{i + 1}-0", e) for i, e in enumerate(events)]


def said(turn: int, seq: int, text: str) -> ev.AgentText:
    return ev.AgentText(call_sid=SID, turn_id=turn, seq=seq, text=text)


def played(turn: int, seq: int, cleared: bool = False) -> ev.SegmentPlayed:
    return ev.SegmentPlayed(
        call_sid=SID, turn_id=turn, seq=seq, mark=f"t{turn}-s{seq}", cleared=cleared
    )


def asked(turn: int, text: str) -> ev.TurnRequested:
    return ev.TurnRequested(call_sid=SID, turn_id=turn, text=text)


MOVED_MID_REPLY = log(
    said(0, 0, GREETING),
    played(0, 0),
    asked(1, "Where are you?"),
    said(1, 0, "We're at 123 High Street."),
    said(1, 1, "Anything else?"),
    played(1, 0),
)


def test_the_reply_the_caller_never_heard_is_said_first() -> None:
    resumed = resumed_from(MOVED_MID_REPLY)
    assert resumed.greeted
    assert resumed.unheard == "Anything else?"
    assert resumed.transcript == [
        f"Agent: {GREETING}",
        "Caller: Where are you?",
        "Agent: We're at 123 High Street.",
    ]


def test_nothing_is_repeated_when_the_caller_spoke_after_it_or_cut_it() -> None:
    spoke_after = resumed_from([*MOVED_MID_REPLY, ("9-0", asked(2, "Hello?"))])
    assert spoke_after.unheard == ""
    barge = ev.BargeIn(
        call_sid=SID,
        turn_id=1,
        trigger="vad:onset",
        trigger_at=0.0,
        heard_text="",
        cleared_marks=[],
    )
    cut = resumed_from([*MOVED_MID_REPLY, ("9-0", played(1, 1, cleared=True)), ("9-1", barge)])
    assert cut.unheard == ""


def test_a_new_call_is_not_resumed() -> None:
    fresh = resumed_from(log(ev.StreamStarted(call_sid=SID, stream_sid="MZ1", replica="a")))
    assert fresh == Resumed()


def test_deepgram_agent_settings_of_a_moved_call() -> None:
    fresh = settings_message(STARTED, Settings()).agent
    assert fresh.greeting == GREETING
    moved = settings_message(STARTED, Settings(), resumed_from(MOVED_MID_REPLY)).agent
    assert moved.greeting == "Anything else?"  # not the greeting again
    assert moved.think is not None
    prompt = str(moved.think.prompt)
    assert "reconnected" in prompt and "Caller: Where are you?" in prompt
    assert "Agent: Anything else?" not in prompt  # the caller never heard it
    heard_all = resumed_from([*MOVED_MID_REPLY, ("9-0", played(1, 1))])
    assert settings_message(STARTED, Settings(), heard_all).agent.greeting is None


def test_elevenlabs_first_message_of_a_moved_call() -> None:
    fresh = initiation(STARTED, SID, Resumed())
    assert fresh["conversation_config_override"]["agent"]["first_message"] == GREETING
    moved = initiation(STARTED, SID, resumed_from(MOVED_MID_REPLY))
    agent = moved["conversation_config_override"]["agent"]
    assert agent["first_message"] == "Anything else?"
    assert "Caller: Where are you?" in agent["prompt"]["prompt"]
