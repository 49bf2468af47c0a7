"""Mark accounting: which agent audio segments were sent, and which the caller actually heard.

Pure bookkeeping (no I/O). A segment is one flushed TTS request; its mark goes to Twilio right
after its audio, and Twilio's echo of the mark means the caller heard all of it - unless we
cleared Twilio's buffer first, in which case the echo only confirms it was dropped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class Segment:
    """One agent text chunk on its way to the caller."""

    turn_id: int
    seq: int
    text: str
    audio_bytes: int = 0
    played: bool = False
    cleared: bool = False

    @property
    def filler(self) -> bool:
        """A filler ("One moment.", issue 17): negative seq, not part of the turn's reply."""
        return self.seq < 0

    @property
    def mark(self) -> str:
        """The Twilio mark name for this segment."""
        return f"t{self.turn_id}-s{self.seq}"


@dataclass(frozen=True)
class ClearResult:
    """What a barge-in cut: the turn it hit, what had been heard, marks still to be echoed."""

    turn_id: int | None
    heard_text: str
    cleared_marks: list[str]
    dropped: list[Segment]
    cleared: list[Segment] = field(default_factory=list)  # sent, cut before they were heard


class SegmentLedger:
    """Segments waiting for TTS audio, sent to Twilio, and played."""

    def __init__(self) -> None:
        self._synthesizing: deque[Segment] = deque()
        self._sent: dict[str, Segment] = {}
        self._turns_with_audio: set[int] = set()
        self._played_text: dict[int, list[str]] = {}

    def queue(self, turn_id: int, seq: int, text: str) -> Segment:
        """A segment whose text went to TTS."""
        segment = Segment(turn_id, seq, text)
        self._synthesizing.append(segment)
        return segment

    def audio(self, n_bytes: int) -> tuple[Segment | None, bool]:
        """Audio arrived for the head segment; returns (segment, first audio of its turn's
        reply?). A filler's audio is no reply audio: the turn's latency stages skip it."""
        if not self._synthesizing:
            return None, False
        head = self._synthesizing[0]
        head.audio_bytes += n_bytes
        if head.filler:
            return head, False
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
        """Twilio echoed `mark`; None for a mark we did not send. A cleared segment comes back
        with `cleared` set and counts as not heard."""
        segment = self._sent.pop(mark, None)
        if segment is not None and not segment.cleared:
            segment.played = True
            if not segment.filler:  # heard text is the reply's (a barge-in logs it)
                self._played_text.setdefault(segment.turn_id, []).append(segment.text)
        return segment

    def clear(self) -> ClearResult:
        """Barge-in: drop what TTS has not delivered; marks already sent will echo as cleared."""
        pending = [s for s in self._sent.values() if not s.cleared]
        dropped = list(self._synthesizing)
        self._synthesizing.clear()
        turns = [s.turn_id for s in (*pending, *dropped)]
        turn_id = max(turns) if turns else None
        for segment in pending:
            segment.cleared = True
        heard = " ".join(self._played_text.get(turn_id, [])) if turn_id is not None else ""
        return ClearResult(turn_id, heard, [s.mark for s in pending], dropped, pending)

    def awaiting_echo(self, mark: str) -> bool:
        """`mark` was sent and Twilio has not echoed it yet."""
        return mark in self._sent

    def heard_text(self, turn_id: int) -> str:
        """Everything of `turn_id` the caller heard so far."""
        return " ".join(self._played_text.get(turn_id, []))

    @property
    def pending_marks(self) -> int:
        """Marks sent but not yet echoed."""
        return len(self._sent)

    @property
    def busy(self) -> bool:
        """The agent is talking: audio is being made or is queued at Twilio (not cleared)."""
        return bool(self._synthesizing) or any(not s.cleared for s in self._sent.values())

    @property
    def current_turn(self) -> int | None:
        """The turn whose audio is being made or played, if any."""
        turns = [s.turn_id for s in self._synthesizing]
        turns += [s.turn_id for s in self._sent.values() if not s.cleared]
        return min(turns) if turns else None
