"""Ending a call's tasks: cancel them, insist when a library swallows the cancellation, and
say where a task that will not stop is stuck."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

RECANCEL_S = 0.5
"""A task still running this long after being cancelled is cancelled again."""


def await_chain(task: asyncio.Task[Any]) -> list[str]:
    """Where a task is suspended: each coroutine it awaits, outermost first (async generators
    are followed through their `asend` objects)."""
    chain: list[str] = []
    obj: object = task.get_coro()
    while obj is not None and len(chain) < 32:
        if type(obj).__name__ in ("async_generator_asend", "async_generator_athrow"):
            gens = [r for r in gc.get_referents(obj) if hasattr(r, "ag_frame")]
            obj = gens[0] if gens else None
            continue
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "ag_frame", None)
        frame = frame or getattr(obj, "gi_frame", None)
        if frame is None:
            chain.append(type(obj).__qualname__)
            break
        chain.append(f"{frame.f_code.co_qualname} ({frame.f_code.co_filename}:{frame.f_lineno})")
        obj = (
            getattr(obj, "cr_await", None)
            or getattr(obj, "ag_await", None)
            or getattr(obj, "gi_yieldfrom", None)
        )
    return chain


async def stop_tasks(tasks: list[asyncio.Task[None]], limit_s: float) -> list[asyncio.Task[None]]:
    """Cancel `tasks` and wait up to `limit_s` for them to end, cancelling again any task that
    swallowed a cancellation (a library catching CancelledError somewhere below us) and
    carried on; returns the tasks still running at the end."""
    deadline = time.monotonic() + limit_s
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - time.monotonic()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(left, RECANCEL_S))
        for task in pending:
            log.warning(
                "task %s carried on after a cancellation; cancelling again: %s",
                task.get_name(),
                " -> ".join(await_chain(task)),
            )
    return [t for t in tasks if t in pending]
