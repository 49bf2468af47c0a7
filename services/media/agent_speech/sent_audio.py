"""The agent audio sent to Twilio and not yet confirmed played, and how much of it the caller
heard when a barge-in cleared it. Pure (time is passed in).

Twilio plays a stream's audio in real time, one chunk after another, so the moment its buffer
of our audio runs dry is known from our own send times. At a clear, the audio sent but not yet
played is the tail of everything sent; walking back from the end gives, for each cut segment,
how much of it was heard. A falsely interrupted segment then goes on from there (less a short
rewind, since the cut fell mid-word), from the kept audio, with no second synthesis.
"""

from __future__ import annotations

from collections.abc import Iterable

from services.media.agent_speech.segment_ledger import ClearResult, Segment

RESUME_REWIND_MS = 240
"""A falsely interrupted segment goes on this much before where it was cut (mid-word)."""
BYTES_PER_MS = 8  # µ-law 8 kHz


class SentAudio:
    """One call's agent audio per segment mark, from its sending until its mark's echo."""

    def __init__(self) -> None:
        self._audio: dict[str, bytearray] = {}
        self._buffer_end = 0.0  # when the audio sent so far has all played (monotonic s)

    def sent(self, mark: str, audio: bytes, now: float) -> None:
        """`audio` of segment `mark` went to Twilio at `now`."""
        self._buffer_end = max(self._buffer_end, now) + len(audio) / (BYTES_PER_MS * 1000)
        self._audio.setdefault(mark, bytearray()).extend(audio)

    def played(self, mark: str) -> None:
        """Twilio echoed `mark` as played: its audio is no longer needed."""
        self._audio.pop(mark, None)

    def cut(self, cut: ClearResult, now: float) -> dict[str, bytes]:
        """A clear at `now` cut `cut`: for each cut segment that had audio sent, that audio
        from a little before the point Twilio had played up to. Forgets all sent audio."""
        unplayed = round(max(0.0, self._buffer_end - now) * 1000) * BYTES_PER_MS
        self._buffer_end = 0.0
        for segment in cut.dropped:  # partly sent, still synthesizing: the very tail
            unplayed -= len(self._audio.pop(segment.mark, b""))
        rewind = RESUME_REWIND_MS * BYTES_PER_MS
        unheard: dict[str, bytes] = {}
        for segment in reversed(cut.cleared):
            audio = self._audio.pop(segment.mark, None)
            if not audio:
                continue
            heard = max(0, len(audio) - max(0, unplayed))
            unplayed -= len(audio)
            unheard[segment.mark] = bytes(audio[max(0, heard - rewind) :])
        return unheard


def skipped_ms(segments: Iterable[Segment], unheard: dict[str, bytes]) -> int:
    """How far into the first of `segments` a resumption starts (0: from its start)."""
    first = next(iter(segments), None)
    if first is None or first.mark not in unheard:
        return 0
    return max(0, first.audio_bytes - len(unheard[first.mark])) // BYTES_PER_MS
