"""Redis key layout, ready for Redis Cluster.

A call's stream lives at ``fd:{g<NN>}:call:<CallSid>``: the hash tag ``{g<NN>}`` puts every call
of one slot group in one hash slot, so a multiplexed XREAD over many calls (plus its wake-up
key in the same group) never crosses slots. Work streams are single keys.
"""

from __future__ import annotations

import zlib

CALLS = "fd:calls"
"""Lifecycle stream: call.started / call.ended for every call (consumer group ``recorder``)."""
TURNS = "fd:turns"
"""Work for the brain: one entry per caller turn (consumer group ``brain``)."""
TOOLS = "fd:tools"
"""Work for the tools service: one entry per tool call (consumer group ``tools``)."""
WORK_STREAMS = (CALLS, TURNS, TOOLS)
"""Every work stream: trimmed once all their consumer groups acknowledged an entry."""


def slot_group(call_sid: str, groups: int) -> int:
    """The slot group a call belongs to (stable across processes)."""
    return zlib.crc32(call_sid.encode()) % groups


def call_stream(call_sid: str, groups: int) -> str:
    """The key of a call's event log."""
    return f"fd:{{g{slot_group(call_sid, groups):02d}}}:call:{call_sid}"


def wake_key(group: int | None, reader_id: str) -> str:
    """A reader's wake-up stream; in cluster mode it shares the slot of its group."""
    tag = "all" if group is None else f"g{group:02d}"
    return f"fd:{{{tag}}}:wake:{reader_id}"


def group_of_key(key: str) -> int:
    """The slot group encoded in a call-stream key."""
    start = key.index("{g") + 2
    return int(key[start : key.index("}", start)])


# --- issue 13 part B: liveness of a call's stream, and "call.ended was written" ---
def live_key(call_sid: str, groups: int) -> str:
    """Held (with a short TTL, refreshed) by the media replica serving the call's stream."""
    return f"fd:{{g{slot_group(call_sid, groups):02d}}}:live:{call_sid}"


def media_replica_alive(replica: str) -> str:
    """Held (with a TTL of about a second, refreshed) by a running media replica: a `live` key
    whose holder's replica lost it is not live, without waiting for the key's own TTL."""
    return f"fd:media-replica:{replica}"


def ended_key(call_sid: str, groups: int) -> str:
    """Set once, by whoever writes the call's `call.ended` (so it is written exactly once)."""
    return f"fd:{{g{slot_group(call_sid, groups):02d}}}:ended:{call_sid}"


# --- Stream guard (issue 12): single-use stream tokens, one live stream per call. Both keys
# carry the call's slot-group hash tag, so they share a slot with the call's stream.


def stream_token_used(call_sid: str, token_id: str, groups: int) -> str:
    """Set (NX) when a stream token is first presented; lives as long as the token."""
    return f"fd:{{g{slot_group(call_sid, groups):02d}}}:stream-token:{call_sid}:{token_id}"


def live_stream(call_sid: str, groups: int) -> str:
    """The call's live-stream marker: ``<issued_ms>:<token_id>`` of the serving stream."""
    return f"fd:{{g{slot_group(call_sid, groups):02d}}}:live-stream:{call_sid}"
