"""Trim a work stream below what every consumer group is done with.

An entry of a work stream may go once every group has acknowledged it. For each group, the
entries below its oldest pending entry, and up to its last-delivered id when nothing is
pending, are acknowledged; the stream is trimmed with ``XTRIM MINID`` below the smallest such
bound over all groups. A pending (unacknowledged) entry, or one not yet delivered to some
group, is therefore never trimmed, however long its handler takes or however far a group lags.
``XADD MAXLEN ~`` was not chosen: it bounds length, not safety, and would drop the backlog of a
group that is down longer than the bound.

A stream without consumer groups is left alone (nobody has read it yet).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio import Redis

from shared.bus.streams import stream_id
from shared.runtime.outage import Outage, is_transient, sleep_unless

log = logging.getLogger(__name__)


def _successor(entry_id: str) -> str:
    ms, seq = stream_id(entry_id)
    return f"{ms}-{seq + 1}"


def _lower(a: str, b: str) -> str:
    return a if stream_id(a) <= stream_id(b) else b


async def trim_floor(redis: Redis, stream: str) -> str | None:
    """The smallest id some group still needs (every id below it is acked by all groups);
    None when the stream has no groups."""
    groups: Any = await redis.xinfo_groups(stream)
    floor: str | None = None
    for group in groups:
        bound = _successor(str(group["last-delivered-id"]))
        if int(group["pending"]) > 0:
            summary: Any = await redis.xpending(stream, group["name"])
            if summary["min"] is not None:
                bound = _lower(bound, str(summary["min"]))
        floor = bound if floor is None else _lower(floor, bound)
    return floor


async def trim_acked(redis: Redis, stream: str) -> int:
    """Remove the entries every group has acknowledged; how many went."""
    if not await redis.exists(stream):
        return 0
    floor = await trim_floor(redis, stream)
    if floor is None:
        return 0
    removed: Any = await redis.xtrim(stream, minid=floor, approximate=False)
    return int(removed)


async def keep_trimmed(
    redis: Redis, streams: list[str], every_s: float, stop: asyncio.Event
) -> None:
    """Trim `streams` every `every_s` until `stop` (Redis blips are waited out)."""
    outage = Outage("redis (work stream trimming)", log)
    while not await sleep_unless(stop, every_s):
        try:
            for stream in streams:
                await trim_acked(redis, stream)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                log.exception("trimming work streams failed")
                continue
            outage.failed(exc)
            continue
        outage.recovered()
