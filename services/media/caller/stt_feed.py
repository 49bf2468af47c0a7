"""Caller audio onto the current STT socket, without losing a frame across reconnects.

Once a socket has caught up with the backlog, each Twilio frame is written to it straight from
the frame handler (no task switch per frame, the hot path of every call), except that long
quiet stretches go out a few frames per write (`quiet_audio.QuietBatcher`). After a
(re)connect a catch-up task replays the unfinalized backlog first, a batch per write; frames
arriving meanwhile only queue. The same task sends KeepAlive when no audio flowed for a while.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import Histogram
from websockets.exceptions import WebSocketException

from services.media.caller.backlog import AudioBacklog
from services.media.caller.quiet_audio import QuietBatcher, QuietBatching
from services.media.caller.stt_deepgram import DeepgramStt

KEEPALIVE_S = 4.0
"""Send KeepAlive when no caller audio reached STT for this long (Deepgram closes at 10 s)."""
SAMPLE_EVERY = 10
"""Time one caller frame in this many for the forwarding-delay histogram (frames sent as they
arrive: a quiet frame held for a batch on purpose is not timed)."""
SEND_ERRORS = (OSError, WebSocketException)


class SttFeed:
    """Writes backlog frames to one STT socket at a time, in order, each exactly once per
    socket (`frames_sent` counts resends after a reconnect: that audio is billed again)."""

    def __init__(
        self,
        backlog: AudioBacklog,
        metric: Histogram | None,
        batching: QuietBatching | None = None,
    ) -> None:
        self.backlog = backlog
        self.frames_sent = 0
        self.writes = 0  # socket writes of audio (a batch is one)
        self._metric = metric
        self._batcher = QuietBatcher(batching)
        self._batch = self._batcher.options.frames
        self._samples: dict[int, float] = {}
        self._stt: DeepgramStt | None = None
        self._next = 0  # next frame index for the current socket
        self._catching_up = False
        self._last_send = time.monotonic()

    async def push(self, frame: bytes, settled: bool = False) -> int:
        """A new caller frame: into the backlog, and onto the socket (with any quiet frames
        held before it) if the socket is live and caught up and the frame need not wait
        (`settled`: no utterance is in progress). A failed write only detaches the socket
        (its reader sees it die and reconnects)."""
        index = self.backlog.append(frame)
        stt = self._stt
        live = stt is not None and not self._catching_up
        if self._batcher.hold(frame, index - self._next if live else 0, settled) and live:
            return index
        if index % SAMPLE_EVERY == 0:
            self._samples[index] = time.perf_counter()
        if stt is not None and live:
            try:
                await self._send(stt, max(self._next, self.backlog.base), index + 1)
            except SEND_ERRORS:
                if self._stt is stt:
                    self._stt = None
        return index

    async def flush(self) -> None:
        """Send the quiet frames held for a batch now (the call is ending)."""
        stt = self._stt
        start = max(self._next, self.backlog.base)
        if stt is not None and not self._catching_up and start < self.backlog.end:
            try:
                await self._send(stt, start, self.backlog.end)
            except SEND_ERRORS:
                if self._stt is stt:
                    self._stt = None

    async def feed(self, stt: DeepgramStt, start: int) -> None:
        """Serve `stt` from frame `start`: replay what is queued, then keep it alive while
        `push` writes live audio. Runs until cancelled (or a write fails)."""
        self._stt, self._next, self._catching_up = stt, start, True
        # Timing samples of frames finalized before they were ever sent are of no use.
        self._samples = {i: t for i, t in self._samples.items() if i >= self.backlog.base}
        try:
            while True:
                self._next = max(self._next, self.backlog.base)
                if self._next < self.backlog.end:
                    end = min(self._next + self._batch, self.backlog.end)
                    await self._send(stt, self._next, end)
                    continue
                self._catching_up = False  # no await since the check: push() takes over
                idle = time.monotonic() - self._last_send
                if idle >= KEEPALIVE_S:
                    await stt.keep_alive()
                    self._last_send = time.monotonic()
                    idle = 0.0
                await asyncio.sleep(KEEPALIVE_S - idle)
                if self._stt is not stt:
                    return  # push() saw this socket fail
                self._catching_up = self._next < self.backlog.end
        finally:
            if self._stt is stt:
                self._stt = None

    async def _send(self, stt: DeepgramStt, start: int, end: int) -> None:
        """Frames [start, end) of the backlog in one write."""
        backlog = self.backlog
        audio = (
            backlog.frame(start)
            if end - start == 1
            else b"".join(backlog.frame(i) for i in range(start, end))
        )
        await stt.send(audio)
        self.frames_sent += end - start
        self.writes += 1
        self._last_send = time.monotonic()
        if self._stt is stt:
            self._next = end
        if self._metric is not None and self._samples:
            now = time.perf_counter()
            for index in range(start, end):
                received = self._samples.pop(index, None)
                if received is not None:
                    self._metric.observe(now - received)
