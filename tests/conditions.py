"""Waiting in tests for a condition, with a bound (never a bare sleep)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def until(check: Callable[[], Awaitable[bool]], what: str, limit_s: float = 120.0) -> None:
    """Poll `check` every 50 ms until it holds; fail naming `what` after `limit_s`."""
    deadline = time.monotonic() + limit_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
