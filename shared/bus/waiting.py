"""Waiting with a time limit that never swallows a cancellation.

Python 3.11's `asyncio.wait_for` can lose a cancellation that arrives as its timeout fires
(fixed in 3.12), which leaves a cancelled task running forever; `asyncio.timeout` does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """Await `awaitable`, raising TimeoutError after `seconds` (None: no limit)."""
    async with asyncio.timeout(seconds):
        return await awaitable


async def wait_event(event: asyncio.Event, seconds: float | None) -> bool:
    """True if `event` is set within `seconds`, False on timeout."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
