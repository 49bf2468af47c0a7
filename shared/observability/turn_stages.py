"""Turn stages from latency marks: pure bookkeeping, no I/O.

A part that writes `latency.mark` entries (media, brain) also notes them here; when a mark
closes a stage whose start this part saw, `mark` returns the stage and its duration, for the
`frontdesk_turn_stage_seconds` histogram. Local marks that never reach the log (`tts_request`)
may be noted too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_TURNS_KEPT = 8
"""Turns remembered at once (a long call uses no more memory)."""

# (opening mark, closing mark, stage); for turn 0 (the greeting) first_audio is the greeting's
STAGES: tuple[tuple[str, str, str], ...] = (
    ("speech_end", "stt_final", "endpointing"),
    ("llm_request", "llm_first_token", "llm_first_token"),
    ("tts_request", "tts_first_byte", "tts_first_byte"),
    ("speech_end", "first_audio_sent", "first_audio"),
)
_GREETING = "greeting_first_frame"


@dataclass
class StageClock:
    """The first time of each mark of the last few turns of one call (or one turn)."""

    _marks: dict[int, dict[str, float]] = field(default_factory=dict)

    def mark(self, turn_id: int, mark: str, at: float) -> list[tuple[str, float]]:
        """Note `mark` of `turn_id` at `at` (wall clock); the stages it completes (marks may
        come in either order: the greeting's speech_end is written after its first audio)."""
        marks = self._marks.get(turn_id)
        if marks is None:
            marks = self._marks[turn_id] = {}
            while len(self._marks) > MAX_TURNS_KEPT:
                del self._marks[min(self._marks)]
        if mark in marks:
            return []  # a later round of the same turn: the first one counts
        marks[mark] = at
        done: list[tuple[str, float]] = []
        for opening, closing, stage in STAGES:
            if mark in (opening, closing) and opening in marks and closing in marks:
                name = _GREETING if turn_id == 0 and stage == "first_audio" else stage
                done.append((name, marks[closing] - marks[opening]))
        return done
