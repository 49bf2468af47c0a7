"""A live call as the console shows it, folded from its call-log events (pure): the
transcript so far (caller lines from `turn.requested`, as the recorder stores them; agent
lines from `agent.text`; fillers from `agent.filler`, marked as such), the current turn's
stage, whether it has ended."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.contract.events import (
    AgentFiller,
    AgentText,
    BargeIn,
    CallEnded,
    CallStarted,
    Event,
    LatencyMark,
    SegmentPlayed,
    SpeechStarted,
    ToolRequested,
    ToolResult,
    TranscriptFinal,
    TurnRequested,
)

STAGE_LABELS = {
    "speech_end": "caller finished",
    "stt_final": "transcribed",
    "llm_request": "asking the LLM",
    "llm_first_token": "LLM answering",
    "first_speakable": "synthesizing speech",
    "tts_first_byte": "speech ready",
    "first_audio_sent": "agent speaking",
}


@dataclass
class LiveLine:
    """A line of the live transcript; `at_s` is seconds since the call started."""

    role: str
    turn_id: int
    text: str
    at_s: float
    kind: str = "speech"  # or "filler": played while the reply was slow (issue 17)


@dataclass
class LiveState:
    """What the live page shows of one call."""

    lines: list[LiveLine] = field(default_factory=list)
    turn_id: int = 0
    stage: str = "ringing"
    ended: bool = False
    started_at: float | None = None


def _stage(state: LiveState, event: Event) -> str | None:
    """The stage label an event moves the call to, if it does."""
    match event:
        case SpeechStarted() | TranscriptFinal():
            return "caller speaking"
        case TurnRequested():
            return "turn requested"
        case LatencyMark(stage=stage):
            return STAGE_LABELS.get(stage)
        case ToolRequested(name=name):
            return f"tool {name}"
        case ToolResult(name=name):
            return f"tool {name} done"
        case BargeIn():
            return "barge-in"
        case AgentFiller():
            return "filler while the reply is slow"
        case SegmentPlayed(turn_id=turn) if turn == state.turn_id:
            return "agent speaking"
    return None


def fold(events: Iterable[Event], state: LiveState | None = None) -> LiveState:
    """Apply events (in log order) to a call's live state."""
    state = state or LiveState()
    for event in events:
        if state.started_at is None or isinstance(event, CallStarted):
            state.started_at = state.started_at if state.started_at is not None else event.at
        at_s = max(0.0, event.at - (state.started_at or event.at))
        if isinstance(event, TurnRequested) and event.source == "caller" and event.text.strip():
            # the caller's utterance as the recorder stores it (finals joined, one per turn)
            state.lines.append(LiveLine("caller", event.turn_id, event.text, at_s))
        elif isinstance(event, AgentText) and event.text.strip():
            last = state.lines[-1] if state.lines else None
            if (
                last is not None
                and (last.role, last.turn_id, last.kind) == ("agent", event.turn_id, "speech")
            ):
                last.text = f"{last.text} {event.text}"
            else:
                state.lines.append(LiveLine("agent", event.turn_id, event.text, at_s))
        elif isinstance(event, AgentFiller):
            state.lines.append(LiveLine("agent", event.turn_id, event.text, at_s, "filler"))
        elif isinstance(event, CallEnded):
            state.ended = True
            state.stage = "ended"
        turn = getattr(event, "turn_id", None)
        if isinstance(turn, int) and not isinstance(event, (AgentText, SegmentPlayed)):
            state.turn_id = max(state.turn_id, turn)
        stage = _stage(state, event)
        if stage is not None and not state.ended:
            state.stage = stage
    return state
