"""A draining media replica moves a call at a pause of the caller's
(services/media/continuity/handover.py): never while an utterance is in progress (the words in
flight were lost with the socket), and never later than its bound."""

from __future__ import annotations

import asyncio
import time

from services.media.continuity.handover import QUIET_S, caller_pause


async def test_the_move_waits_for_the_callers_line_to_end() -> None:
    hearing = [True]
    pause = asyncio.create_task(caller_pause(lambda: False, lambda: hearing[0], limit_s=60))
    await asyncio.sleep(QUIET_S * 3)  # longer than a pause needs: it must still be waiting
    assert not pause.done()
    hearing[0] = False  # the line's final is in: the turn is written
    ended = time.monotonic()
    await asyncio.wait_for(pause, 10)
    assert time.monotonic() - ended >= QUIET_S


async def test_a_caller_who_talks_on_is_moved_at_the_bound() -> None:
    started = time.monotonic()
    await asyncio.wait_for(caller_pause(lambda: False, lambda: True, limit_s=0.3), 10)
    assert time.monotonic() - started >= 0.3


async def test_a_closed_socket_ends_the_wait() -> None:
    await asyncio.wait_for(caller_pause(lambda: True, lambda: True, limit_s=60), 10)
