"""The silence Piper puts around every text it renders, cut where a text is only part of a
sentence: a reply's opening phrase ("A men's haircut") and the rest of its sentence ("is £25
and takes 30 minutes.") come as two texts, and their edges would add ~0.2 s of silence in the
middle of the sentence (pure numpy, no I/O)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SENTENCE_ENDS = (".", "!", "?", "…", '."', '!"', '?"')
SILENCE_LEVEL = 0.01
"""Samples below this (float audio in [-1, 1], about -40 dBFS) count as silence."""
KEEP_MS = 30
"""Silence kept at a cut edge, so the joined words do not run into each other."""


def ends_mid_sentence(text: str) -> bool:
    """The text stops before its sentence ends (no closing punctuation)."""
    return not text.rstrip().endswith(SENTENCE_ENDS)


def goes_on_a_sentence(text: str) -> bool:
    """The text is the rest of a sentence begun in an earlier text (it starts in lower case)."""
    stripped = text.lstrip()
    return bool(stripped) and stripped[0].islower()


def trim_edges(
    audio: npt.NDArray[np.float32], rate: int, lead: bool, tail: bool
) -> npt.NDArray[np.float32]:
    """`audio` with its leading and/or trailing silence cut to `KEEP_MS`."""
    loud = np.flatnonzero(np.abs(audio) >= SILENCE_LEVEL)
    if loud.size == 0 or not (lead or tail):
        return audio
    keep = rate * KEEP_MS // 1000
    start = max(0, int(loud[0]) - keep) if lead else 0
    end = min(len(audio), int(loud[-1]) + 1 + keep) if tail else len(audio)
    return audio[start:end]
