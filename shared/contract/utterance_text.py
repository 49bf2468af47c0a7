"""Caller words compared as words: a preemptive reply's transcript against the final one."""

from __future__ import annotations

import re

_DROP_RE = re.compile(r"[^\w' ]+", re.UNICODE)


def normalised(text: str) -> str:
    """Lower case, `’` as `'`, hyphens as spaces, other punctuation dropped, single spaces:
    "Hi, what are your opening hours?" and "hi what are your opening hours" are the same."""
    cleaned = text.lower().replace("’", "'").replace("-", " ").replace("_", " ")
    words = (w.strip("'") for w in _DROP_RE.sub(" ", cleaned).split())
    return " ".join(w for w in words if w)


def same_words(a: str, b: str) -> bool:
    """Whether two transcripts say the same words (see `normalised`)."""
    return normalised(a) == normalised(b)
