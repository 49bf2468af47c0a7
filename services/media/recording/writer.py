"""One stream's part of a call recording: taps the Twilio link, stores chunks as it goes.

Frame 0 of the call's clock is the call's start (`call.started`, written by the gateway), so
every replica that serves a stream of the call places its audio on the same timeline: a call
that moves (crash, drain) continues in the same recording, with silence for the seconds the
line was between streams. Chunks are final `jitter_ms` after they are heard and are stored
every `chunk_s`: a replica killed mid-call loses at most the last `chunk_s + jitter_ms`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from obstore.exceptions import BaseError as StoreError

from services.media.recording.timeline import FRAMES_PER_MS, StereoTimeline
from shared.recordings.store import RecordingStore
from shared.recordings.wav import RATE

log = logging.getLogger(__name__)

MAX_UNSTORED_CHUNKS = 60
"""Chunks kept while the store is failing (a minute at 1 s each); older ones are dropped."""


class StreamRecording:
    """Records one Media Stream of a call into the call's recording (a `LineTap`)."""

    def __init__(
        self,
        store: RecordingStore,
        tenant_id: str,
        call_sid: str,
        *,
        call_started_at: float,
        stream_started_at: float,
        chunk_s: float,
        jitter_ms: int,
    ) -> None:
        self.store = store
        self.tenant_id = tenant_id
        self.call_sid = call_sid
        self.chunk_s = chunk_s
        self.jitter = jitter_ms * FRAMES_PER_MS
        self.offset = max(0, round((stream_started_at - call_started_at) * RATE))
        self._mono0 = time.monotonic() - (time.time() - stream_started_at)
        self.timeline = StereoTimeline(base=self.offset)
        self._unstored: deque[tuple[int, bytes]] = deque(maxlen=MAX_UNSTORED_CHUNKS)
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.chunks_stored = 0

    def now(self) -> int:
        """The current frame on the call's clock."""
        return self.offset + int((time.monotonic() - self._mono0) * RATE)

    # ---- the tap (hot path: no I/O) ---------------------------------------------------
    def caller(self, timestamp_ms: int, audio: bytes) -> None:
        """Caller audio; `timestamp_ms` is Twilio's, since this stream's `start`."""
        self.timeline.caller(self.offset + timestamp_ms * FRAMES_PER_MS, audio)

    def agent(self, audio: bytes) -> None:
        """Agent audio just sent to Twilio."""
        self.timeline.agent(self.now(), audio)

    def cleared(self) -> None:
        """Twilio's buffer was just cleared (barge-in)."""
        self.timeline.clear(self.now())

    # ---- storing ----------------------------------------------------------------------
    def start(self) -> None:
        """Store chunks every `chunk_s` until `close`."""
        self._task = asyncio.create_task(self._run(), name="recording")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.chunk_s)
            await self._store(self.timeline.take(self.now() - self.jitter))

    async def _store(self, chunk: tuple[int, bytes]) -> None:
        async with self._lock:
            if chunk[1]:
                self._unstored.append(chunk)
            while self._unstored:
                start, frames = self._unstored[0]
                try:
                    await self.store.put_chunk(self.tenant_id, self.call_sid, start, frames)
                except (StoreError, OSError) as exc:  # kept, and tried again next time
                    log.warning(
                        "recording chunk not stored yet (%d pending): %s", len(self._unstored), exc
                    )
                    return
                self._unstored.popleft()
                self.chunks_stored += 1

    async def close(self) -> None:
        """The stream ended: store what is left (agent audio not yet played is dropped)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._store(self.timeline.finish(self.now()))
