"""Mark accounting: which agent audio segments were sent, and which the caller actually heard.

Pure bookkeeping (no I/O). A segment is one flushed TTS request; its mark goes to Twilio right
after its audio, and Twilio's echo of the mark means the caller heard all of it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass
class Segment:
    """One agent text chunk on its way to the caller."""

    turn_id: int
    seq: int
    text: str
    audio_bytes: int = 0

    @property
    def mark(self) -> str:
        """The Twilio mark name for this segment."""
        return f"t{self.turn_id}-s{self.seq}"


class SegmentLedger:
    """Segments waiting for TTS audio, sent to Twilio, and played."""

    def __init__(self) -> None:
        self._synthesizing: deque[Segment] = deque()
        self._sent: dict[str, Segment] = {}
        self._turns_with_audio: set[int] = set()

    def queue(self, turn_id: int, seq: int, text: str) -> Segment:
        """A segment whose text went to TTS."""
        segment = Segment(turn_id, seq, text)
        self._synthesizing.append(segment)
        return segment

    def audio(self, n_bytes: int) -> tuple[Segment | None, bool]:
        """Audio arrived for the head segment; returns (segment, first audio of its turn?)."""
        if not self._synthesizing:
            return None, False
        head = self._synthesizing[0]
        head.audio_bytes += n_bytes
        first = head.turn_id not in self._turns_with_audio
        self._turns_with_audio.add(head.turn_id)
        return head, first

    def flushed(self) -> Segment | None:
        """TTS finished the head segment: it moves to 'sent' (its mark goes out next)."""
        if not self._synthesizing:
            return None
        segment = self._synthesizing.popleft()
        self._sent[segment.mark] = segment
        return segment

    def played(self, mark: str) -> Segment | None:
        """Twilio echoed `mark`; None for a mark we did not send."""
        return self._sent.pop(mark, None)

    @property
    def pending_marks(self) -> int:
        """Marks sent but not yet echoed."""
        return len(self._sent)
