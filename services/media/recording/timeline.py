"""The two directions of a call as they were on the line, in µ-law frames at 8 kHz. Pure: every
method takes the time (`now`, in frames on the call's clock) from its caller.

Caller audio lands where its Twilio timestamp puts it. Agent audio plays like Twilio's buffer
plays it: from when it was sent, or when the audio queued before it ends, at 8 frames per ms.
A `clear` (barge-in) drops what had not played by then, so the agent channel holds what the
caller heard. Frames older than `now - jitter` are final and can be taken out in chunks.
"""

from __future__ import annotations

from shared.codecs import ULAW_SILENCE
from shared.recordings.wav import interleave

FRAMES_PER_MS = 8


class StereoTimeline:
    """Caller (left) and agent (right) channels from `base` (the first frame not yet taken)."""

    def __init__(self, base: int = 0) -> None:
        self.base = base
        self._caller = bytearray()
        self._agent = bytearray()
        self.agent_until = base  # where queued agent audio ends (Twilio's buffer)
        self.caller_until = base  # where the caller audio received so far ends
        self.late_frames = 0  # caller frames that arrived after their place was taken

    def _grow(self, end: int) -> None:
        need = end - self.base - len(self._caller)
        if need > 0:
            fill = bytes([ULAW_SILENCE]) * need
            self._caller += fill
            self._agent += fill

    def caller(self, at: int, audio: bytes) -> None:
        """Caller audio whose first frame is at frame `at` of the call's clock."""
        skip = max(0, self.base - at)
        if skip >= len(audio):
            self.late_frames += len(audio)
            return
        self.late_frames += skip
        at, audio = at + skip, audio[skip:]
        self._grow(at + len(audio))
        offset = at - self.base
        self._caller[offset : offset + len(audio)] = audio
        self.caller_until = max(self.caller_until, at + len(audio))

    def agent(self, now: int, audio: bytes) -> None:
        """Agent audio sent to Twilio at `now`: it plays after what is already queued."""
        start = max(now, self.agent_until, self.base)
        self._grow(start + len(audio))
        offset = start - self.base
        self._agent[offset : offset + len(audio)] = audio
        self.agent_until = start + len(audio)

    def clear(self, now: int) -> None:
        """Twilio dropped its queued agent audio at `now`: nothing after it was heard."""
        cut = max(now, self.base)
        if self.agent_until > cut:
            start, end = cut - self.base, self.agent_until - self.base
            self._agent[start:end] = bytes([ULAW_SILENCE]) * (end - start)
            self.agent_until = cut

    def take(self, until: int) -> tuple[int, bytes]:
        """(first frame, interleaved stereo frames) of [base, until); they are final."""
        start = self.base
        count = max(0, until - start)
        if count == 0:
            return start, b""
        self._grow(until)
        frames = interleave(self._caller[:count], self._agent[:count])
        del self._caller[:count]
        del self._agent[:count]
        self.base = until
        return start, frames

    def finish(self, now: int) -> tuple[int, bytes]:
        """The rest, for a stream that ends at `now`: agent audio still queued then was never
        played; caller audio already received is kept."""
        self.clear(now)
        return self.take(max(now, self.caller_until))
