"""Cut a streaming LLM reply into speakable chunks (sentences), so TTS starts early."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:—]\s")
_ENDS_SENTENCE = re.compile(r"(?:[!?…]+|(?<![.\w])[A-Za-z][a-z]+\.)[\"')\]]*$")
"""A buffer that already ends a sentence, before the next delta brings the space: `?`, `!`,
`…`, or a period after a word of two letters or more (not after a digit, `£7.` may go on as
`£7.50`; not after an initialism such as `p.m.`, nor after a one-letter word)."""
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "no", "vs", "etc", "approx", "jr", "sr"})
"""Words whose period does not end a sentence by itself (the next delta decides)."""


class SpeakableChunker:
    """Feed text deltas; get back whole sentences (or long clauses) ready to speak.

    A sentence is cut as soon as its end arrives ("minutes." at the end of a delta is spoken
    without waiting for the next delta's space: one LLM chunk sooner). The first chunk of a
    reply is cut at a clause once it passes `first_max_chars`, so a long opening sentence does
    not hold back the first audio; later chunks at `max_chars`.
    """

    def __init__(self, max_chars: int = 160, first_max_chars: int | None = None) -> None:
        self._buffer = ""
        self._max_chars = max_chars
        self._first_max_chars = min(60, max_chars) if first_max_chars is None else first_max_chars
        self._emitted = False

    def feed(self, delta: str) -> list[str]:
        """Chunks completed by this delta."""
        self._buffer += delta
        out: list[str] = []
        while True:
            match = _SENTENCE_END.search(self._buffer)
            limit = self._max_chars if self._emitted else self._first_max_chars
            if match is None and len(self._buffer) > limit:
                match = _CLAUSE_END.search(self._buffer)
            if match is None:
                if self._ends_sentence():
                    out.append(self._buffer.strip())
                    self._buffer, self._emitted = "", True
                return out
            chunk, self._buffer = self._buffer[: match.end()], self._buffer[match.end() :]
            if chunk.strip():
                out.append(chunk.strip())
                self._emitted = True

    def _ends_sentence(self) -> bool:
        match = _ENDS_SENTENCE.search(self._buffer)
        if match is None:
            return False
        word = match.group().rstrip("\"')]").rstrip(".").lower()
        return word not in _ABBREVIATIONS

    def flush(self) -> str | None:
        """Whatever is left at the end of the reply."""
        rest, self._buffer = self._buffer.strip(), ""
        return rest or None
