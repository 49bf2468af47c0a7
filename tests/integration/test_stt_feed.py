"""Caller audio reaches the STT socket in order, exactly once per socket: replayed from the
backlog after a (re)connect, written straight from the frame handler once caught up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from websockets.asyncio.server import ServerConnection, serve

from services.media.caller.backlog import AudioBacklog
from services.media.caller.quiet_audio import QuietBatching
from services.media.caller.stt_deepgram import DeepgramStt
from services.media.caller.stt_feed import SttFeed
from shared.bus.waiting import within
from shared.runtime.settings import Settings


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

    async def audio(self, socket: int, frames: int) -> bytes:
        """The audio socket `socket` got, once it holds at least `frames` 20 ms frames."""
        while len(self.sockets) <= socket or sum(map(len, self.sockets[socket])) < frames * 160:
            self.changed.clear()
            await within(self.changed.wait(), 10)
        return b"".join(self.sockets[socket])

    async def until(self, socket: int, frames: int) -> list[bytes]:
        """The messages socket `socket` got, once there are at least `frames` of them."""
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


async def stop_feeding(task: asyncio.Task[None], stt: DeepgramStt) -> None:
    """End a feed task and close its socket (what CallerInput does when a socket ends)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await stt.close()


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
        assert await lis.audio(0, 40) == b"".join(frame(i) for i in range(40))
        assert feed.frames_sent == 40
        await feed.push(frame(40))  # caught up: written by push itself, no task hop
        assert feed.frames_sent == 41
        assert await lis.audio(0, 41) == b"".join(frame(i) for i in range(41))

        # The socket drops: a new one is fed from the first unfinalized frame.
        await stop_feeding(task, stt)
        backlog.finalized_until(15 * 20)  # STT finalized the first 15 frames
        await feed.push(frame(41))  # no socket: queues
        stt2 = DeepgramStt(settings, "CA1", audio_offset_ms=backlog.base * 20)
        await stt2.open()
        task = asyncio.create_task(feed.feed(stt2, backlog.base))
        await feed.push(frame(42))
        assert await lis.audio(1, 28) == b"".join(frame(i) for i in range(15, 43))
        assert feed.frames_sent == 41 + 28
        await stop_feeding(task, stt2)


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


QUIET = bytes([0xFF]) * 160


def loud(i: int) -> bytes:
    return bytes([i % 64]) * 160  # µ-law codes 0..63: samples far above the quiet peak


async def test_long_quiet_goes_out_in_batches_and_a_loud_frame_takes_the_batch_with_it() -> None:
    async with listener() as (lis, settings):
        backlog = AudioBacklog()
        feed = SttFeed(  # 5 quiet frames mid-utterance, 2 with none open
            backlog, None, QuietBatching(frames=5, after_ms=100, settled_after_ms=40)
        )
        stt = DeepgramStt(settings, "CA3")
        await stt.open()
        task = asyncio.create_task(feed.feed(stt, 0))
        await feed.push(loud(0))
        await lis.until(0, 1)  # caught up: from now on push writes
        sent: list[bytes] = [loud(0)]
        for _ in range(17):
            await feed.push(QUIET, settled=False)  # mid-utterance
            sent.append(QUIET)
        # 5 quiet frames one by one, then 2 batches of 5; 2 quiet frames wait
        assert feed.frames_sent == 16 and feed.writes == 8
        await feed.push(loud(1))  # a voice onset: sent at once, with the 2 held before it
        sent.append(loud(1))
        assert feed.frames_sent == 19 and feed.writes == 9
        got = await lis.until(0, 9)
        assert [len(m) // 160 for m in got] == [1, 1, 1, 1, 1, 1, 5, 5, 3]
        assert b"".join(got) == b"".join(sent)  # the same audio, in order

        for _ in range(8):
            await feed.push(QUIET, settled=False)  # the run restarted: 5 single writes, 3 held
        assert feed.frames_sent == 24
        await feed.flush()  # the call ends: what was held goes out
        assert feed.frames_sent == 27 and backlog.end == 27
        got = await lis.until(0, 15)
        assert b"".join(got) == b"".join(sent) + QUIET * 8

        await feed.push(loud(2))
        for _ in range(9):
            await feed.push(QUIET, settled=True)  # the utterance was finalized: waits sooner
        assert feed.frames_sent == 28 + 2 + 5  # 2 quiet frames at once, a batch of 5, 2 held
        await feed.flush()
        assert [len(m) // 160 for m in await lis.until(0, 20)][-5:] == [1, 1, 1, 5, 2]
        await stop_feeding(task, stt)


async def test_catch_up_after_a_reconnect_writes_batches() -> None:
    async with listener() as (lis, settings):
        backlog = AudioBacklog()
        feed = SttFeed(backlog, None, QuietBatching(frames=4))
        for i in range(10):
            await feed.push(loud(i))  # no socket yet: they queue
        stt = DeepgramStt(settings, "CA4")
        await stt.open()
        task = asyncio.create_task(feed.feed(stt, 0))
        got = await lis.until(0, 3)
        assert [len(m) // 160 for m in got] == [4, 4, 2]
        assert b"".join(got) == b"".join(loud(i) for i in range(10))
        await stop_feeding(task, stt)
