"""Caller audio reaches the STT socket in order, exactly once per socket: replayed from the
backlog after a (re)connect, written straight from the frame handler once caught up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from websockets.asyncio.server import ServerConnection, serve

from services.media.audio_backlog import AudioBacklog
from services.media.stt_deepgram import DeepgramStt
from services.media.stt_feed import SttFeed
from shared.settings import Settings
from shared.waiting import within


class Listener:
    """A bare WebSocket endpoint standing in for Deepgram: records what each socket got."""

    def __init__(self) -> None:
        self.sockets: list[list[bytes]] = []
        self.changed = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        got: list[bytes] = []
        self.sockets.append(got)
        async for message in ws:
            if isinstance(message, bytes):
                got.append(message)
                self.changed.set()

    async def until(self, socket: int, frames: int) -> list[bytes]:
        while len(self.sockets) <= socket or len(self.sockets[socket]) < frames:
            self.changed.clear()
            await within(self.changed.wait(), 10)
        return self.sockets[socket]


@contextlib.asynccontextmanager
async def listener() -> AsyncIterator[tuple[Listener, Settings]]:
    lis = Listener()
    async with serve(lis.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield lis, Settings(deepgram_stt_url=f"ws://127.0.0.1:{port}", deepgram_api_key="k")


def frame(i: int) -> bytes:
    return bytes([i % 256]) * 160


async def test_backlog_is_replayed_then_live_frames_follow_in_order() -> None:
    async with listener() as (lis, settings):
        backlog = AudioBacklog()
        feed = SttFeed(backlog, None)
        for i in range(10):  # before any socket: they only queue
            await feed.push(frame(i))
        stt = DeepgramStt(settings, "CA1")
        await stt.open()
        task = asyncio.create_task(feed.feed(stt, 0))
        for i in range(10, 40):  # while the catch-up runs, and after
            await feed.push(frame(i))
            if i % 7 == 0:
                await asyncio.sleep(0)  # let the catch-up task interleave
        assert await lis.until(0, 40) == [frame(i) for i in range(40)]
        assert feed.frames_sent == 40
        await feed.push(frame(40))  # caught up: written by push itself, no task hop
        assert feed.frames_sent == 41
        assert await lis.until(0, 41) == [frame(i) for i in range(41)]

        # The socket drops: a new one is fed from the first unfinalized frame.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await stt.close()
        backlog.finalized_until(15 * 20)  # STT finalized the first 15 frames
        await feed.push(frame(41))  # no socket: queues
        stt2 = DeepgramStt(settings, "CA1", audio_offset_ms=backlog.base * 20)
        await stt2.open()
        task = asyncio.create_task(feed.feed(stt2, backlog.base))
        await feed.push(frame(42))
        assert await lis.until(1, 28) == [frame(i) for i in range(15, 43)]
        assert feed.frames_sent == 41 + 28
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await stt2.close()


async def test_a_failed_live_write_detaches_the_socket_without_raising() -> None:
    async with listener() as (lis, settings):
        backlog = AudioBacklog()
        feed = SttFeed(backlog, None)
        stt = DeepgramStt(settings, "CA2")
        await stt.open()
        task = asyncio.create_task(feed.feed(stt, 0))
        await feed.push(frame(0))
        await lis.until(0, 1)
        await stt.close()  # the socket is gone under the feed
        for i in range(1, 4):
            await feed.push(frame(i))  # must not raise into the Twilio frame handler
        assert backlog.end == 4  # nothing lost: the next socket replays from the backlog
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
