"""When a draining replica moves a call: at a pause of the caller's.

Closing the Twilio socket while the caller is mid-line loses that line: the words already spoken
have not reached STT's final yet, and the new stream's STT never hears them (the caller then
hears "Are you still there?" instead of an answer). So a handover waits, boundedly, until the
caller has been between lines for a moment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

SETTLE_S = 5.0
"""Longest a handover waits for the caller to finish their line (someone talking on and on is
moved anyway)."""
QUIET_S = 0.2
"""How long the caller must have been between lines before the stream moves (the turn of the
line just finished is written by then)."""
POLL_S = 0.02


async def caller_pause(
    closed: Callable[[], bool], hearing: Callable[[], bool], limit_s: float = SETTLE_S
) -> None:
    """Return once `hearing()` (an utterance in progress) has been false for QUIET_S, once
    `closed()` (the socket), or after `limit_s`."""
    deadline = time.monotonic() + limit_s
    quiet_since: float | None = None
    while not closed() and (now := time.monotonic()) < deadline:
        if hearing():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= QUIET_S:
            return
        await asyncio.sleep(POLL_S)
