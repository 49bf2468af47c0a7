"""Caller audio onto the current STT socket, without losing a frame across reconnects.

Once a socket has caught up with the backlog, each Twilio frame is written to it straight from
the frame handler (no task switch per frame, the hot path of every call). After a (re)connect
a catch-up task replays the unfinalized backlog first; frames arriving meanwhile only queue.
The same task sends KeepAlive when no audio flowed for a while.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import Histogram
from websockets.exceptions import WebSocketException

from services.media.audio_backlog import AudioBacklog
from services.media.stt_deepgram import DeepgramStt

KEEPALIVE_S = 4.0
"""Send KeepAlive when no caller audio reached STT for this long (Deepgram closes at 10 s)."""
SAMPLE_EVERY = 10
"""Time one caller frame in this many for the forwarding-delay histogram."""
SEND_ERRORS = (OSError, WebSocketException)


class SttFeed:
    """Writes backlog frames to one STT socket at a time, in order, each exactly once per
    socket (`frames_sent` counts resends after a reconnect: that audio is billed again)."""

    def __init__(self, backlog: AudioBacklog, metric: Histogram | None) -> None:
        self.backlog = backlog
        self.frames_sent = 0
        self._metric = metric
        self._samples: dict[int, float] = {}
        self._stt: DeepgramStt | None = None
        self._next = 0  # next frame index for the current socket
        self._catching_up = False
        self._last_send = time.monotonic()

    async def push(self, frame: bytes) -> int:
        """A new caller frame: into the backlog, and onto the socket if it is live and caught
        up. A failed write only detaches the socket (its reader sees it die and reconnects)."""
        index = self.backlog.append(frame)
        if index % SAMPLE_EVERY == 0:
            self._samples[index] = time.perf_counter()
        stt = self._stt
        if stt is not None and not self._catching_up and index == self._next:
            try:
                await self._send(stt, index)
            except SEND_ERRORS:
                if self._stt is stt:
                    self._stt = None
        return index

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
                    await self._send(stt, self._next)
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

    async def _send(self, stt: DeepgramStt, index: int) -> None:
        await stt.send(self.backlog.frame(index))
        self.frames_sent += 1
        self._last_send = time.monotonic()
        if self._stt is stt:
            self._next = index + 1
        received = self._samples.pop(index, None)
        if received is not None and self._metric is not None:
            self._metric.observe(time.perf_counter() - received)
