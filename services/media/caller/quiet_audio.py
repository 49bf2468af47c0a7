"""Which caller frames may wait before going to STT: the long quiet stretches of a call.

Every Twilio frame is 20 ms. Written to STT one by one, each costs a WebSocket frame, a
syscall and a wake-up on both ends (about 15 µs of the sender's CPU on this project's VM when
the receiver sleeps), and most of a call's caller audio is quiet: the caller listens while
the agent talks. Quiet audio can wait once no STT decision can be waiting on it:
- no utterance is in progress (the last one was finalized, or STT reported none) and the
  caller has been quiet for longer than endpointing (a word STT has not reported yet still
  gets its endpoint on time), or
- the caller has been quiet for longer than any STT decision waits on silence (endpointing,
  UtteranceEnd).
Then quiet frames are batched into one write of up to `frames` frames. The first frame with
a loud sample ends the batch at once: it goes out together with the frames held before it,
so a voice onset is never delayed.

Pure: bytes in, a decision out (no I/O, no clock; time is counted in frames).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.codecs import ULAW_TO_PCM16

FRAME_MS = 20


class QuietBatching(BaseModel):
    """When quiet caller audio is sent to STT in batches instead of frame by frame."""

    model_config = ConfigDict(frozen=True)

    frames: int = Field(5, ge=1, description="Frames per STT write while quiet (1: never wait).")
    after_ms: int = Field(
        1200, ge=0, description="Quiet needed mid-utterance; above the UtteranceEnd gap (1 s)."
    )
    settled_after_ms: int = Field(
        400, ge=0, description="Quiet needed with no utterance open; above endpointing (300)."
    )
    peak_dbfs: float = Field(
        -45.0, le=0.0, description="A frame is quiet when no sample reaches this level."
    )


def quiet_codes(peak_dbfs: float) -> bytes:
    """The µ-law byte values whose sample stays under `peak_dbfs` (of full scale 32768)."""
    limit = 32768.0 * 10.0 ** (peak_dbfs / 20.0)
    return bytes(code for code in range(256) if abs(int(ULAW_TO_PCM16[code])) < limit)


class QuietBatcher:
    """One call's decision, frame by frame: send now, or hold for the next write."""

    def __init__(self, options: QuietBatching | None = None) -> None:
        self.options = options or QuietBatching()
        self._quiet = quiet_codes(self.options.peak_dbfs)
        self._quiet_frames_needed = self.options.after_ms // FRAME_MS
        self._settled_frames_needed = self.options.settled_after_ms // FRAME_MS
        self.quiet_frames = 0
        """Consecutive quiet frames up to and including the last one seen."""

    def is_quiet(self, frame: bytes) -> bool:
        """No sample of `frame` reaches the peak level (one C call: strip leaves nothing)."""
        return not frame.strip(self._quiet)

    def hold(self, frame: bytes, held: int, settled: bool) -> bool:
        """Whether `frame` may wait, given `held` frames already waiting before it; `settled`:
        no utterance is in progress. Call once per frame, in order (it counts the quiet run)."""
        if not self.is_quiet(frame):
            self.quiet_frames = 0
            return False
        self.quiet_frames += 1
        needed = self._settled_frames_needed if settled else self._quiet_frames_needed
        if self.quiet_frames <= needed:
            return False
        return held + 1 < self.options.frames
