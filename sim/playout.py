"""Pure model of Twilio's outbound playback buffer for a bidirectional Media Stream.

The server sends ``media`` (audio to play), ``mark`` (tell me when everything before this
has played) and ``clear`` (drop everything queued, echo all pending marks now). Twilio
plays queued audio in real time: 8000 µ-law bytes per second = 8 bytes per millisecond.

No I/O and no clock of its own: every call passes ``now_ms`` (a monotonic time in ms,
never decreasing). Marks that became due are returned by :meth:`PlayoutQueue.advance`
(or by :meth:`PlayoutQueue.clear`), in order, each exactly once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

BYTES_PER_MS = 8


@dataclass
class Segment:
    """Audio the server queued between two marks; ``mark`` is the mark that closed it
    (None for audio after the last mark). ``played`` is True once the mark was reached by
    playback, False if a clear dropped it before then, None while still pending."""

    mark: str | None
    audio: bytearray = field(default_factory=bytearray)
    played: bool | None = None


@dataclass
class _Audio:
    data: bytes
    offset: int = 0  # bytes already played

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset


@dataclass
class _Mark:
    name: str
    segment: Segment


class PlayoutQueue:
    """FIFO of audio and marks consumed by a playback clock at 8 bytes per ms."""

    def __init__(self) -> None:
        self._items: deque[_Audio | _Mark] = deque()
        self._cursor_ms: float | None = None  # time up to which playback was simulated
        self._due: list[str] = []  # marks reached by playback, not yet returned
        self._queued_bytes = 0
        self._played = bytearray()
        self._dropped = bytearray()
        self._segments: list[Segment] = []
        self._open = Segment(mark=None)
        self._drained_at_ms: float | None = None
        self._ever_audio = False

    # -- inputs -------------------------------------------------------------------------

    def push_audio(self, data: bytes, now_ms: float) -> None:
        """Queue audio sent by the server at ``now_ms``."""
        self._run(now_ms)
        if not data:
            return
        self._items.append(_Audio(bytes(data)))
        self._queued_bytes += len(data)
        self._open.audio.extend(data)
        self._drained_at_ms = None
        self._ever_audio = True

    def push_mark(self, name: str, now_ms: float) -> None:
        """Queue a mark after all audio queued so far."""
        self._run(now_ms)
        seg = self._open
        seg.mark = name
        self._segments.append(seg)
        self._open = Segment(mark=None)
        self._items.append(_Mark(name, seg))
        self._run(now_ms)  # a mark on an idle queue is due immediately

    def clear(self, now_ms: float) -> list[str]:
        """Drop all queued audio; return every mark to echo now (due ones first), in order."""
        self._run(now_ms)
        out = self._take_due()
        dropped_unmarked = False  # audio after the last queued mark was dropped
        while self._items:
            item = self._items.popleft()
            if isinstance(item, _Audio):
                self._dropped.extend(item.data[item.offset :])
                dropped_unmarked = True
            else:
                item.segment.played = False
                out.append(item.name)
                dropped_unmarked = False
        if self._open.audio:  # close the unmarked tail so later audio starts a new segment
            self._open.played = not dropped_unmarked
            self._segments.append(self._open)
            self._open = Segment(mark=None)
        self._queued_bytes = 0
        if self._drained_at_ms is None and self._ever_audio:
            self._drained_at_ms = now_ms
        return out

    def advance(self, now_ms: float) -> list[str]:
        """Play audio up to ``now_ms``; return marks whose preceding audio has all played."""
        self._run(now_ms)
        return self._take_due()

    # -- observations ------------------------------------------------------------------

    @property
    def played_bytes(self) -> int:
        """Bytes played so far (as of the last call that passed a time)."""
        return len(self._played)

    @property
    def played_audio(self) -> bytes:
        """The audio actually played, in order (excludes audio dropped by clear)."""
        return bytes(self._played)

    def played_since(self, offset: int) -> bytes:
        """The played audio from byte `offset` on (cheap for a small tail)."""
        return bytes(self._played[offset:])

    @property
    def dropped_audio(self) -> bytes:
        """Audio that was queued but dropped by clear before it played."""
        return bytes(self._dropped)

    @property
    def queued_bytes(self) -> int:
        """Audio bytes still waiting to play (as of the last call that passed a time)."""
        return self._queued_bytes

    @property
    def queued_ms(self) -> float:
        """Playing time of the audio still queued (as of the last call)."""
        return self._queued_bytes / BYTES_PER_MS

    @property
    def drained_at_ms(self) -> float | None:
        """When the queue last became empty after holding audio; None while playing or if
        no audio was ever queued."""
        return self._drained_at_ms

    @property
    def segments(self) -> list[Segment]:
        """Audio split at marks, in order; includes the trailing unmarked audio if any."""
        tail = [self._open] if self._open.audio else []
        return [*self._segments, *tail]

    def is_idle(self, now_ms: float) -> bool:
        """True when nothing (audio or mark) is left to play at ``now_ms``. Due marks not yet
        collected by :meth:`advance` stay collectable."""
        self._run(now_ms)
        return not self._items

    # -- internals ---------------------------------------------------------------------

    def _take_due(self) -> list[str]:
        out, self._due = self._due, []
        return out

    def _run(self, now_ms: float) -> None:
        if self._cursor_ms is None:
            self._cursor_ms = now_ms
        budget = int((now_ms - self._cursor_ms) * BYTES_PER_MS)
        spent = 0
        while self._items:
            head = self._items[0]
            if isinstance(head, _Mark):
                self._items.popleft()
                head.segment.played = True
                self._due.append(head.name)
                continue
            take = min(head.remaining, budget - spent)
            if take <= 0:
                break
            self._played.extend(head.data[head.offset : head.offset + take])
            head.offset += take
            spent += take
            self._queued_bytes -= take
            if head.remaining == 0:
                self._items.popleft()
        if self._items:
            self._cursor_ms += spent / BYTES_PER_MS
        else:
            if self._drained_at_ms is None and self._ever_audio:
                self._drained_at_ms = self._cursor_ms + spent / BYTES_PER_MS
            self._cursor_ms = max(self._cursor_ms, now_ms)
