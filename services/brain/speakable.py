"""Cut a streaming LLM reply into speakable chunks (sentences), so TTS starts early."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:—]\s")


class SpeakableChunker:
    """Feed text deltas; get back whole sentences (or long clauses) ready to speak.

    The first chunk of a reply is cut at a clause once it passes `first_max_chars`, so a long
    opening sentence does not hold back the first audio; later chunks at `max_chars`.
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
                return out
            chunk, self._buffer = self._buffer[: match.end()], self._buffer[match.end() :]
            if chunk.strip():
                out.append(chunk.strip())
                self._emitted = True

    def flush(self) -> str | None:
        """Whatever is left at the end of the reply."""
        rest, self._buffer = self._buffer.strip(), ""
        return rest or None
