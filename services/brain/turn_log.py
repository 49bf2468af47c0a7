"""What a turn reads in its call's log: the entries it skips, whether it is still owed an
answer, and what the agent says when a tool it reported as failed succeeded after all."""

from __future__ import annotations

import json

from shared.contract import events as ev
from shared.contract.conversation_knobs import ConversationKnobs, effective
from shared.runtime.settings import Settings

NOT_FOR_HISTORY = frozenset(
    {
        "transcript.interim",
        "transcript.final",
        "latency.mark",
        "usage",
        "audio.segment_sent",
        "caller.speech_started",
        "stream.started",
        "provider.error",
        "caller.dtmf",
    }
)
"""Event types a turn never needs: skipped without parsing when the log is read."""


def opening_phrase_words(entries: list[tuple[str, ev.Event]], settings: Settings) -> int:
    """Whole words of a reply's opening phrase for this call: its tenant's, else the
    platform's (`REPLY_FIRST_PHRASE_WORDS`)."""
    started = next((e for _, e in entries if isinstance(e, ev.CallStarted)), None)
    knobs = started.conversation if started is not None else ConversationKnobs()
    return effective(knobs, settings).first_phrase_words


def superseded(entries: list[tuple[str, ev.Event]], turn_id: int) -> bool:
    """The turn is answered already, or the caller moved on (a barge-in that was not undone
    as a false interrupt, or a newer turn), or the call is over."""
    undone = any(isinstance(e, ev.FalseInterrupt) and e.turn_id == turn_id for _, e in entries)
    return any(
        (isinstance(e, ev.AgentTurnDone) and e.turn_id == turn_id)
        or (isinstance(e, ev.TurnRequested) and e.turn_id > turn_id)
        or (isinstance(e, ev.BargeIn) and e.turn_id == turn_id and not e.filler_only and not undone)
        or isinstance(e, ev.CallEnded)
        for _, e in entries
    )


def late_correction(result: ev.ToolResult) -> str:
    """What the agent says when a tool call it reported as failed succeeded after all."""
    try:
        facts = json.loads(result.content)
    except json.JSONDecodeError:
        facts = None
    if isinstance(facts, dict) and facts.get("status") == "confirmed":
        what = " ".join(str(facts[k]) for k in ("service", "spoken") if facts.get(k))
        who = f" with {facts['staff']}" if facts.get("staff") else ""
        ref = f" Your reference is {facts['booking_id']}." if facts.get("booking_id") else ""
        return f"Sorry, a correction: your booking did go through: {what}{who}.{ref}"
    return "Sorry, a correction: that did go through after all."
