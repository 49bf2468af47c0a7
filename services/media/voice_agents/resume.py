"""What a voice agent needs when a call moves to this replica mid-conversation. Pure.

A voice agent (Deepgram's, ElevenLabs') keeps the conversation on the provider's side; a new
stream opens a new agent session that knows nothing. From the call log it gets:
- whether the caller was already greeted (then no greeting again),
- the conversation so far as the caller heard it (agent text only where its mark was echoed
  as played), for the agent's prompt,
- the latest agent reply's text that the caller never heard (the old replica died or drained
  before playing it), which the new session says first, unless the caller spoke after it or
  interrupted it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.contract import events as ev


@dataclass(frozen=True)
class Resumed:
    """The call so far, as a new agent session needs it."""

    greeted: bool = False
    transcript: list[str] = field(default_factory=list)  # "Caller: ...", "Agent: ..."
    unheard: str = ""  # the latest reply's text the caller never heard ('' when none)


def resumed_from(history: list[tuple[str, ev.Event]]) -> Resumed:
    """Read the call log of a call that moved here (its entries before this stream)."""
    heard: set[tuple[int, int]] = set()
    interrupted: set[int] = set()
    texts: list[ev.AgentText] = []
    last_caller_turn = 0
    transcript: list[tuple[int, str]] = []  # (index in the log, line)
    for index, (_, event) in enumerate(history):
        if isinstance(event, ev.SegmentPlayed) and not event.cleared:
            heard.add((event.turn_id, event.seq))
        elif isinstance(event, ev.BargeIn):
            interrupted.add(event.turn_id)
        elif isinstance(event, ev.AgentText) and event.text.strip():
            texts.append(event)
        elif isinstance(event, ev.TurnRequested) and event.source == "caller":
            last_caller_turn = max(last_caller_turn, event.turn_id)
            transcript.append((index, f"Caller: {event.text}"))
    if not texts:
        return Resumed(transcript=[line for _, line in transcript])
    positions = {id(e): i for i, (_, e) in enumerate(history)}
    for text in texts:
        if (text.turn_id, text.seq) in heard:
            transcript.append((positions[id(text)], f"Agent: {text.text}"))
    transcript.sort()
    last_turn = max(t.turn_id for t in texts)
    unheard = ""
    if last_turn not in interrupted and last_turn >= last_caller_turn:
        unheard = " ".join(
            t.text.strip()
            for t in texts
            if t.turn_id == last_turn and (t.turn_id, t.seq) not in heard
        )
    return Resumed(greeted=True, transcript=[line for _, line in transcript], unheard=unheard)


def reconnected_prompt(prompt: str, resumed: Resumed) -> str:
    """The agent's prompt with the conversation so far appended (unchanged when there is none)."""
    if not resumed.transcript:
        return prompt
    return f"{prompt}\n\nThe call was reconnected. Conversation so far:\n" + "\n".join(
        resumed.transcript
    )
