"""Cut a streaming LLM reply into speakable chunks (sentences), so TTS starts early."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:—]\s")
_ENDS_SENTENCE = re.compile(r"(?:[!?…]+|(?<![.\w])[A-Za-z][a-z]+\.)[\"')\]]*$")
"""A buffer that already ends a sentence, before the next delta brings the space: `?`, `!`,
`…`, or a period after a word of two letters or more (not after a digit, `£7.` may go on as
`£7.50`; not after an initialism such as `p.m.`, nor after a one-letter word)."""
_WORD = re.compile(r"\S+")
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "no", "vs", "etc", "approx", "jr", "sr"})
"""Words whose period does not end a sentence by itself (the next delta decides)."""


_LEANS_ON_NEXT = frozenset(
    "a an the my your our their his her its this that these those "
    "at in on to from of for with by into onto about as than and or but nor "
    "is are was were be been am will would can could shall should may might must do does did "
    "not no very so just i we you he she they it it's we're you're i'm i'll we'll".split()
)
"""Words a phrase must not end on: they lean on the next word ("We're at | 123 High Street"),
so a cut after them would be heard as a stumble."""


class SpeakableChunker:
    """Feed text deltas; get back whole sentences (or long clauses) ready to speak.

    A sentence is cut as soon as its end arrives ("minutes." at the end of a delta is spoken
    without waiting for the next delta's space: one LLM chunk sooner). The first chunk of a
    reply is cut at a clause once it passes `first_max_chars`, so a long opening sentence does
    not hold back the first audio; later chunks at `max_chars`. With `first_phrase_words` > 0,
    the first chunk goes as soon as that many whole words have arrived (a word is whole once
    a space follows it), cut at the last whole word: the opening phrase of a long sentence is
    spoken while the LLM still writes the rest.
    """

    def __init__(
        self, max_chars: int = 160, first_max_chars: int | None = None, first_phrase_words: int = 0
    ) -> None:
        self._buffer = ""
        self._max_chars = max_chars
        self._first_max_chars = min(60, max_chars) if first_max_chars is None else first_max_chars
        self._first_phrase_words = first_phrase_words
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
                elif not self._emitted and (phrase := self._opening_phrase()):
                    out.append(phrase)
                    self._emitted = True
                return out
            chunk, self._buffer = self._buffer[: match.end()], self._buffer[match.end() :]
            if chunk.strip():
                out.append(chunk.strip())
                self._emitted = True

    def _opening_phrase(self) -> str | None:
        """The buffer's whole words up to the last one a phrase may end on, taken from it, once
        there are `first_phrase_words` of them; None while there is no such cut."""
        if self._first_phrase_words <= 0:
            return None
        words = list(_WORD.finditer(self._buffer))
        if words and words[-1].end() == len(self._buffer):
            words.pop()  # the last word may go on in the next delta ("open" -> "opening")
        for end in range(len(words), self._first_phrase_words - 1, -1):
            if _may_end_phrase(words[end - 1].group()):
                cut = words[end - 1].end()
                phrase, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
                return phrase
        return None

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


def _may_end_phrase(word: str) -> bool:
    """A phrase may end on this word: no digit (a number goes on: "123 High Street", "£25 and")
    and not a word that leans on the next one."""
    bare = word.strip("\"'()[],;:").lower()
    return bool(bare) and not any(c.isdigit() for c in word) and bare not in _LEANS_ON_NEXT
