"""Caller audio that STT has not finalized yet, indexed by 20 ms frame number.

If the STT socket drops, a new one is fed from the first unfinalized frame, so no caller words
are lost; frames received while reconnecting simply wait here.
"""

from __future__ import annotations

import asyncio
from collections import deque

from shared.bus.waiting import wait_event

FRAME_MS = 20
MAX_BACKLOG_FRAMES = 3000
"""Keep at most 60 s of unfinalized audio (a caller who never pauses cannot grow memory)."""


class AudioBacklog:
    """Frames from `base` to `end` (exclusive), with a wake-up for the sender."""

    def __init__(self) -> None:
        self.base = 0
        self._frames: deque[bytes] = deque()
        self._arrived = asyncio.Event()
        self.closed = False

    @property
    def end(self) -> int:
        """Index one past the newest frame."""
        return self.base + len(self._frames)

    def append(self, frame: bytes) -> int:
        """Add the next frame; returns its index."""
        self._frames.append(frame)
        if len(self._frames) > MAX_BACKLOG_FRAMES:
            self._frames.popleft()
            self.base += 1
        self._arrived.set()
        return self.end - 1

    def finalized_until(self, audio_ms: int) -> None:
        """STT finalized everything before `audio_ms`: forget those frames."""
        upto = min(audio_ms // FRAME_MS, self.end)
        while self.base < upto:
            self._frames.popleft()
            self.base += 1

    def frame(self, index: int) -> bytes:
        """The frame at `index` (which must be within [base, end))."""
        return self._frames[index - self.base]

    async def wait_beyond(self, index: int, wait_s: float) -> bool:
        """Wait until a frame at `index` exists (True), or `wait_s` passes or audio ends (False)."""
        while index >= self.end and not self.closed:
            self._arrived.clear()
            if not await wait_event(self._arrived, wait_s):
                return False
        return index < self.end

    def close(self) -> None:
        """No more audio (the call ended): release the sender."""
        self.closed = True
        self._arrived.set()
