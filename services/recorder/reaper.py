"""Ends calls nobody will end: a stream that never started, a media replica that vanished.

Every `reaper_poll_s` one recorder replica (a Redis lease) looks at the calls Postgres still
has `in-progress`. A call gets `call.ended` when no media replica holds its `live` key and its
log has been quiet long enough: `no-stream` (no `stream.started`, `no_stream_timeout_s` after
the last entry) or `media-lost` (`media_lost_after_s`). The write is the shared end-once
script, so it never races a stream that starts (or a media replica that ends the call) at the
same moment. The recorder then stores it like any other `call.ended`. A call whose log is no
longer in Redis (expired, lost) is left alone: there is nothing to append to.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bus.call_end import end_call, is_live
from shared.bus.streams import CallLog, stream_id
from shared.contract import events as ev
from shared.db.models import Call

log = logging.getLogger(__name__)

LEASE_KEY = "fd:reaper:lease"
BATCH = 500
"""Most calls looked at per round (newest first)."""


@dataclass(frozen=True)
class ReaperBounds:
    """How long a call may stay quiet before it is ended."""

    no_stream_s: float
    media_lost_s: float
    poll_s: float


def verdict(entries: list[tuple[str, ev.Event]], quiet_s: float, b: ReaperBounds) -> str | None:
    """Pure: the `call.ended` reason for a call whose stream is not live, or None to wait."""
    if any(isinstance(e, ev.CallEnded) for _, e in entries):
        return None  # ended; the recorder stores it
    streamed = any(isinstance(e, ev.StreamStarted) for _, e in entries)
    if streamed:
        return "media-lost" if quiet_s >= b.media_lost_s else None
    return "no-stream" if quiet_s >= b.no_stream_s else None


async def reap_once(
    call_log: CallLog, sessions: Callable[[], AsyncSession], b: ReaperBounds
) -> list[str]:
    """One round; returns the CallSids ended."""
    horizon = datetime.now(UTC) - timedelta(seconds=min(b.no_stream_s, b.media_lost_s))
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Call.call_sid, Call.tenant_id, Call.started_at)
                .where(Call.status == "in-progress", Call.started_at < horizon)
                .order_by(Call.started_at.desc())  # the newest abandoned calls first
                .limit(BATCH)
            )
        ).all()
    if not rows:
        return []
    now_s, now_us = await call_log.redis.time()
    now_ms = now_s * 1000 + now_us // 1000
    ended: list[str] = []
    for call_sid, tenant_id, started_at in rows:
        if await is_live(call_log, call_sid):
            continue
        entries = await call_log.entries(call_sid)
        if not any(isinstance(e, ev.CallStarted) for _, e in entries):
            continue  # no log in Redis (expired or lost): not a call this bus is running
        last_ms = stream_id(entries[-1][0])[0]
        reason = verdict(entries, (now_ms - last_ms) / 1000, b)
        if reason is None:
            continue
        event = ev.CallEnded(
            call_sid=call_sid,
            tenant_id=tenant_id or "",
            reason=reason,
            duration_s=round(max(0.0, time.time() - started_at.timestamp()), 3),
        )
        if await end_call(call_log, event, unless_live=True) is not None:
            log.warning("ended call %s: %s", call_sid, reason)
            ended.append(call_sid)
    return ended


async def run_reaper(
    call_log: CallLog,
    sessions: Callable[[], AsyncSession],
    b: ReaperBounds,
    holder: str,
    stop: asyncio.Event,
) -> None:
    """Reap every `poll_s` while this replica holds the lease, until `stop` is set."""
    while not stop.is_set():
        try:
            lease_ms = max(1, int(b.poll_s * 2000))
            got = await call_log.redis.set(LEASE_KEY, holder, nx=True, px=lease_ms)
            if got or await call_log.redis.get(LEASE_KEY) == holder:
                await call_log.redis.pexpire(LEASE_KEY, lease_ms)
                await reap_once(call_log, sessions, b)
        except (RedisError, OSError) as exc:
            log.warning("reaper round failed: %s", exc)
        try:
            async with asyncio.timeout(b.poll_s):
                await stop.wait()
        except TimeoutError:
            pass
