"""`call.ended`, written exactly once per call, and the heartbeat of a call's live stream.

Several parties may end a call: the media replica serving it, the gateway (Twilio said the
call completed, or after-stream hung up on a call that never streamed), and the recorder's
reaper (a call whose stream never started or whose media replica vanished). An `ended` key,
set with NX in the same script that appends the entry, makes the first of them win. The
reaper's variant also refuses while a media replica holds the call's `live` key, and media
takes the `live` key only while `ended` is unset: whichever runs first, a reaped call is never
served and a served call is never reaped. Every key of one call shares its hash slot.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.bus.streams import CallLog
from shared.contract import events as ev
from shared.contract import keys
from shared.runtime.outage import Outage, until_available

_log = logging.getLogger(__name__)
END_RETRY_MAX_S = 0.2
"""Longest wait between two tries of a `call.ended` write while Redis is away."""

# KEYS: ended, live, stream. ARGV: ttl_s, "1" = refuse while live, then the entry's fields.
_END_ONCE = """
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then return false end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return false end
return redis.call('XADD', KEYS[3], '*', unpack(ARGV, 3))
"""

# KEYS: live, ended. ARGV: holder, ttl_ms. 1 = held, 0 = the call already ended.
_TAKE_LIVE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: live. ARGV: holder. Deletes the key only if this holder still has it.
_RELEASE_LIVE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

ENDED_TTL_S = 7 * 24 * 3600
"""How long the `ended` marker outlives the call (longer than any stream is kept)."""


async def end_call(log: CallLog, event: ev.CallEnded, *, unless_live: bool = False) -> str | None:
    """Append `event` unless the call already ended (or, with `unless_live`, while a media
    replica holds the call); publish it to `fd:calls`. Returns the entry id, None if not."""
    groups = log.slot_groups
    sid = event.call_sid
    fields = ev.encode(event)
    argv: list[Any] = [ENDED_TTL_S, "1" if unless_live else "0"]
    for name, value in fields.items():
        argv += [name, value]
    entry_id = await log.redis.eval(
        _END_ONCE,
        3,
        keys.ended_key(sid, groups),
        keys.live_key(sid, groups),
        log.key(sid),
        *argv,
    )
    if not entry_id:
        return None
    await log.publish(keys.CALLS, {"call_sid": sid, "type": event.type})
    return str(entry_id)


async def end_call_when_available(
    log: CallLog, event: ev.CallEnded, patience_s: float
) -> str | None:
    """`end_call`, waiting out a Redis outage for up to `patience_s` (retries are safe: the
    `ended` marker makes a second write a no-op). A call ended in a blip is then ended by
    its own stream, with its own reason, rather than by the reaper's `media-lost` later."""
    return await until_available(
        lambda: end_call(log, event),
        Outage(f"call.ended of {event.call_sid}", _log),
        max_delay_s=END_RETRY_MAX_S,
        patience_s=patience_s,
    )


async def has_ended(log: CallLog, call_sid: str) -> bool:
    """Whether someone wrote the call's `call.ended`."""
    return bool(await log.redis.exists(keys.ended_key(call_sid, log.slot_groups)))


async def take_live(log: CallLog, call_sid: str, holder: str, ttl_s: float) -> bool:
    """Hold the call's `live` key for a stream; False if the call already ended."""
    groups = log.slot_groups
    held = await log.redis.eval(
        _TAKE_LIVE,
        2,
        keys.live_key(call_sid, groups),
        keys.ended_key(call_sid, groups),
        holder,
        int(ttl_s * 1000),
    )
    return bool(held)


async def release_live(log: CallLog, call_sid: str, holder: str) -> None:
    """Give the `live` key up (if this holder still has it)."""
    await log.redis.eval(_RELEASE_LIVE, 1, keys.live_key(call_sid, log.slot_groups), holder)


def holder_replica(holder: str) -> str:
    """The media replica named in a `live` key's holder ("REPLICA:STREAM_SID")."""
    return holder.rsplit(":", 1)[0]


async def is_live(log: CallLog, call_sid: str) -> bool:
    """Whether a running media replica holds the call's stream right now: its `live` key is
    held, and the holder's replica is alive (a killed replica is seen within its heartbeat TTL,
    about a second, not the `live` key's few seconds). Two single-key reads: cluster-safe."""
    holder = await log.redis.get(keys.live_key(call_sid, log.slot_groups))
    if holder is None:
        return False
    replica = holder_replica(holder if isinstance(holder, str) else holder.decode())
    return bool(await log.redis.exists(keys.media_replica_alive(replica)))
