"""What Twilio does when a Media Stream ends, decided from the call log (DESIGN §5).

The decision waits for the stream's own end: media writes `call.ended` (unless the call moves)
and then `stream.ended` as the very last entries of a stream, and holds the call's `live` key
while it serves it. So after-stream waits for one of those entries, and answers "reconnect"
without waiting further once the `live` key is gone without them (the replica died). An
earlier entry (usage, a late latency mark) no longer looks like "media died", which resumed
calls that had ended (zombies).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

from redis.exceptions import RedisError

from shared.bus.call_end import end_call, is_live
from shared.bus.streams import CallLog
from shared.contract import events as ev

log = logging.getLogger(__name__)

Action = Literal["hangup", "transfer", "reconnect", "apologize"]

POLL_MS = 250
"""Longest one blocking read waits before the `live` key is looked at again."""
NO_STREAM = "no-stream"
"""`call.ended` reason of a call whose stream never started (or was refused)."""


@dataclass(frozen=True)
class Decision:
    """The next TwiML: hang up, dial a person, resume the stream, or apologize and hang up."""

    action: Action
    target: str = ""
    caller_id: str = ""


def _last_stream(entries: list[tuple[str, ev.Event]]) -> int:
    streams = (i for i, (_, e) in enumerate(entries) if isinstance(e, ev.StreamStarted))
    return max(streams, default=-1)


def settled(entries: list[tuple[str, ev.Event]]) -> bool:
    """The log says how the last stream ended: an intent, no stream at all, or its end entry."""
    if any(isinstance(e, ev.CallIntent) for _, e in entries):
        return True
    last = _last_stream(entries)
    if last < 0:
        return True
    return any(isinstance(e, ev.CallEnded | ev.StreamEnded) for _, e in entries[last + 1 :])


def decide(entries: list[tuple[str, ev.Event]]) -> Decision:
    """Pure decision over a call's events.

    - an agent/keypress intent: transfer -> <Dial>, end -> <Hangup/>
    - no stream ever started (refused token, caller gone): <Hangup/>
    - the stream ended normally (caller, protocol error): <Hangup/>
    - a provider failure (or media's own) ended it: transfer if the business has a number,
      else apologize
    - no call.ended after the last stream.started (handed over, or the replica died): reconnect
    """
    started = next((e for _, e in entries if isinstance(e, ev.CallStarted)), None)
    intent = next((e for _, e in reversed(entries) if isinstance(e, ev.CallIntent)), None)
    caller_id = started.from_number if started else ""
    if intent is not None:
        if intent.kind == "transfer" and intent.target:
            return Decision("transfer", intent.target, caller_id)
        return Decision("hangup")
    last_stream = _last_stream(entries)
    ended = next((e for _, e in entries[last_stream + 1 :] if isinstance(e, ev.CallEnded)), None)
    if ended is None:
        return Decision("reconnect") if last_stream >= 0 else Decision("hangup")
    if ended.reason.startswith(("provider-error", ev.MEDIA_ERROR)) or ended.reason == "closed":
        target = started.transfer_number if started else ""
        return Decision("transfer", target, caller_id) if target else Decision("apologize")
    return Decision("hangup")


async def settled_log(
    call_log: CallLog, call_sid: str, max_wait_ms: int
) -> list[tuple[str, ev.Event]]:
    """The call's events once the last stream's end is in (bounded by `max_wait_ms`); returns
    early when the `live` key is gone without an end entry (the media replica died)."""
    deadline = time.monotonic() + max_wait_ms / 1000
    entries = await call_log.entries(call_sid)
    while not settled(entries):
        if not await is_live(call_log, call_sid):
            return await call_log.entries(call_sid)  # released right after the end entries
        left_ms = int((deadline - time.monotonic()) * 1000)
        if left_ms <= 0:
            log.warning("after-stream: no end of %s in %d ms; resuming", call_sid, max_wait_ms)
            return entries
        after = entries[-1][0] if entries else "0-0"
        await call_log.redis.xread({call_log.key(call_sid): after}, block=min(POLL_MS, left_ms))
        entries = await call_log.entries(call_sid)
    return entries


async def decide_call(
    call_log: CallLog, call_sid: str, max_wait_ms: int
) -> tuple[Decision, list[tuple[str, ev.Event]]]:
    """The decision for a call (waiting for its stream's end); a call that never streamed
    gets its `call.ended` here. Redis down: resume (a fresh stream), never an error."""
    try:
        entries = await settled_log(call_log, call_sid, max_wait_ms)
    except RedisError as exc:
        log.warning("after-stream for %s without Redis: %s", call_sid, exc)
        return Decision("reconnect"), []
    decision = decide(entries)
    if decision.action == "hangup" and _last_stream(entries) < 0:
        await _end_unstreamed(call_log, call_sid, entries)
    return decision, entries


async def _end_unstreamed(
    call_log: CallLog, call_sid: str, entries: list[tuple[str, ev.Event]]
) -> None:
    started = next((e for _, e in entries if isinstance(e, ev.CallStarted)), None)
    if started is None:
        return  # not a call we accepted
    ended = ev.CallEnded(
        call_sid=call_sid,
        tenant_id=started.tenant_id,
        reason=NO_STREAM,
        duration_s=round(max(0.0, time.time() - started.at), 3),
    )
    try:
        await end_call(call_log, ended)
    except RedisError as exc:  # the reaper ends it later
        log.warning("could not end %s: %s", call_sid, exc)
