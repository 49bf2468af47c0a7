"""Call teardown stops tasks even when something below them swallows a cancellation."""

from __future__ import annotations

import asyncio
import contextlib

from services.media.task_teardown import await_chain, stop_tasks


async def _swallows_once(started: asyncio.Event, stage: list[str]) -> None:
    started.set()
    with contextlib.suppress(asyncio.CancelledError):  # what a careless library does
        await asyncio.Event().wait()
    stage.append("carried on")
    await asyncio.Event().wait()  # back to waiting, as if nothing had happened


async def test_a_task_that_swallowed_a_cancellation_is_cancelled_again() -> None:
    started, stage = asyncio.Event(), []
    task = asyncio.create_task(_swallows_once(started, stage))
    await started.wait()
    stuck = await stop_tasks([task], limit_s=10.0)
    assert stuck == []
    assert task.cancelled()
    assert stage == ["carried on"]


async def test_a_task_that_never_stops_is_reported() -> None:
    started, released = asyncio.Event(), False

    async def stubborn() -> None:
        started.set()
        while not released:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()

    task = asyncio.create_task(stubborn())
    await started.wait()
    stuck = await stop_tasks([task], limit_s=0.2)
    assert stuck == [task]
    chain = await_chain(task)
    assert chain[0].startswith("test_a_task_that_never_stops_is_reported.<locals>.stubborn")
    assert any(link.startswith("Event.wait") for link in chain)
    released = True
    task.cancel()
    await task


async def test_await_chain_follows_async_generators() -> None:
    gate = asyncio.Event()

    reached = asyncio.Event()

    async def source() -> object:
        reached.set()
        await gate.wait()
        yield 1

    async def consumer() -> None:
        async for _ in source():
            pass

    task = asyncio.create_task(consumer())
    await reached.wait()
    chain = await_chain(task)
    assert [link.split(" ")[0] for link in chain[:3]] == [
        "test_await_chain_follows_async_generators.<locals>.consumer",
        "test_await_chain_follows_async_generators.<locals>.source",
        "Event.wait",
    ]
    gate.set()
    await task
