"""What Twilio does when a Media Stream ends, decided from the call log (DESIGN §5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.contract import events as ev

Action = Literal["hangup", "transfer", "reconnect", "apologize"]


@dataclass(frozen=True)
class Decision:
    """The next TwiML: hang up, dial a person, resume the stream, or apologize and hang up."""

    action: Action
    target: str = ""
    caller_id: str = ""


def decide(entries: list[tuple[str, ev.Event]]) -> Decision:
    """Pure decision over a call's events.

    - an agent/keypress intent: transfer -> <Dial>, end -> <Hangup/>
    - the stream ended normally (caller, protocol error): <Hangup/>
    - a provider failure ended it: transfer if the business has a number, else apologize
    - no call.ended after the last stream.started: the media replica died -> reconnect
    """
    started = next((e for _, e in entries if isinstance(e, ev.CallStarted)), None)
    intent = next((e for _, e in reversed(entries) if isinstance(e, ev.CallIntent)), None)
    caller_id = started.from_number if started else ""
    if intent is not None:
        if intent.kind == "transfer" and intent.target:
            return Decision("transfer", intent.target, caller_id)
        return Decision("hangup")
    last_stream = max(
        (i for i, (_, e) in enumerate(entries) if isinstance(e, ev.StreamStarted)), default=-1
    )
    ended = next((e for _, e in entries[last_stream + 1 :] if isinstance(e, ev.CallEnded)), None)
    if ended is None:
        return Decision("reconnect") if last_stream >= 0 else Decision("hangup")
    if ended.reason.startswith("provider-error") or ended.reason == "closed":
        target = started.transfer_number if started else ""
        return Decision("transfer", target, caller_id) if target else Decision("apologize")
    return Decision("hangup")
