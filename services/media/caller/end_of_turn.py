"""Dynamic endpointing: when has the caller finished? Pure (text and audio times in, no I/O).

STT ends an utterance after `short_ms` of silence (Deepgram `endpointing`, shorter than the
fixed 300 ms used before). The transcript then decides:
- a complete-looking utterance ends the turn at once (so a caller who is plainly done is
  answered `300 - short_ms` sooner than with the fixed rule, never later);
- an utterance that stops on a continuation ("my number is", "and", "for the", "um", a
  trailing comma, a phone number cut short), or is only an opener ("Hi."), is held: the turn
  ends only after `hold_ms` more audio with no new words (or on STT's UtteranceEnd), and words
  arriving meanwhile extend it.

Why text and not an audio model: Pipecat's Smart-Turn v3.2 (BSD-2, 8.7 MB ONNX in the
pipecat-ai 1.14.0 wheel) costs about 42 ms of CPU per decision on this project's 2-core VM
(14 ms of Whisper features + 28 ms of model, `bench/smart_turn_cpu.py`), four times the 10 ms
budget; this policy costs microseconds (docs/bench.md, "End of turn").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

CONTINUATIONS = frozenset(
    """and or but because cause if than while
    to for from at into with without of about
    a an the my your our their
    is are was were am i'm it's there's
    um uh er erm
    let i'd""".split()
)
"""A last word that leaves the sentence open (words that often close one, like "so", "that",
"in", "this", "me", are left out: "I think so", "fit me in", "I'll take this")."""
CLOSED_PAIRS = frozenset({("love", "to"), ("like", "to"), ("have", "to"), ("want", "to")})
"""Endings in CONTINUATIONS that are usually complete ("I'd love to")."""
OPEN_PHRASES = (
    ("my", "number", "is"),
    ("number", "is"),
    ("my", "name", "is"),
    ("it's", "spelled"),
    ("let", "me", "think"),
    ("hold", "on"),
    ("one", "second"),
    ("just", "a", "second"),
)
"""Phrases that announce more to come, even though their last word may close a sentence."""
OPENERS = frozenset(
    {"hi", "hello", "hey", "hi there", "hello there", "oh hi", "well", "so"}
    | {"great", "perfect", "lovely", "brilliant", "oh great"}
)
"""A whole utterance that only opens one ("Hi," then a pause, then the question; "Great," then
"thanks, bye"): the agent already greeted, and a lone "Great." has little to answer, so holding
it costs little; STT may still punctuate it as a sentence. "Yes", "okay", "thanks" stay
complete (answers and goodbyes)."""
_WORD_RE = re.compile(r"[\w']+")
_DIGITS = frozenset("zero oh one two three four five six seven eight nine".split())
PHONE_DIGITS = 10


class EndOfTurnOptions(BaseModel):
    """Silences of the dynamic endpointing."""

    model_config = ConfigDict(frozen=True)

    short_ms: int = Field(200, ge=10, description="STT endpointing: silence that may end a turn.")
    hold_ms: int = Field(
        800, ge=0, description="More silence waited after an utterance that stops mid-sentence."
    )
    after_voice_ms: int = Field(
        1500, ge=0, description="Held, then the caller spoke again: quiet waited for its words."
    )
    voice_cap_ms: int = Field(
        6000, ge=0, description="Longest a hold runs while voice without words goes on."
    )


def _digits_in(words: list[str]) -> int:
    return sum(len(w) if w.isdigit() else (1 if w in _DIGITS else 0) for w in words)


def open_reason(text: str) -> str | None:
    """Why `text` looks unfinished ("comma", "continuation:<word>", "phrase:<...>",
    "digits:<n>"), or None when it looks complete."""
    stripped = text.strip()
    if not stripped:
        return None
    if stripped.endswith((",", "-", "…", "...", ":")):
        return "comma"
    words: list[str] = [str(w).lower().replace("’", "'") for w in _WORD_RE.findall(stripped)]
    if " ".join(words) in OPENERS:
        return "opener"
    if stripped.endswith((".", "?", "!")) and not stripped.endswith(".."):
        return None  # STT punctuated a full stop: a sentence ended
    if not words:
        return None
    for phrase in OPEN_PHRASES:
        if tuple(words[-len(phrase) :]) == phrase:
            return "phrase:" + " ".join(phrase)
    if words[-1] in CONTINUATIONS and tuple(words[-2:]) not in CLOSED_PAIRS:
        return "continuation:" + words[-1]
    tail = words[-14:]
    if any(w in ("number", "phone") for w in tail):
        digits = _digits_in(tail)
        if 0 < digits < PHONE_DIGITS:
            return f"digits:{digits}"
    return None


@dataclass
class TurnEnd:
    """One call's end-of-turn state: is an utterance being held open, until when?"""

    options: EndOfTurnOptions
    held_end_ms: int | None = None  # audio time the held utterance's speech ended
    held_reason: str | None = None

    @property
    def holding(self) -> bool:
        """An utterance ended mid-sentence and waits for more words."""
        return self.held_end_ms is not None

    def speech_final(self, text: str, speech_end_ms: int) -> bool:
        """STT ended an utterance whose (accumulated) text is `text`: True to end the turn
        now, False to hold it open."""
        reason = open_reason(text)
        if reason is None or self.options.hold_ms == 0:
            self.held_end_ms = self.held_reason = None
            return True
        self.held_end_ms, self.held_reason = speech_end_ms, reason
        return False

    def words_arrived(self) -> None:
        """The caller went on: the next speech_final decides again."""
        self.held_end_ms = self.held_reason = None

    def expired(
        self, audio_ms: int, spoke_again: bool = False, voice_stopped_ms: int | None = None
    ) -> bool:
        """The hold ran out at caller audio time `audio_ms` (then the turn ends).

        `spoke_again`: the local VAD heard the caller's voice start after the held words
        (`voice_stopped_ms`: when it stopped; None while it goes on). STT's words for it may
        lag the voice by a second or more on a busy recogniser ("Great," then "thanks, bye"):
        the hold waits while the voice goes on and `after_voice_ms` after it, up to
        `voice_cap_ms` in all (a cough or a TV that never becomes words)."""
        held = self.held_end_ms
        if held is None:
            return False
        o = self.options
        if spoke_again and o.hold_ms > 0:
            if audio_ms - held >= o.voice_cap_ms:
                return True
            if voice_stopped_ms is None:
                return False
            return audio_ms - voice_stopped_ms >= max(o.after_voice_ms, o.short_ms + o.hold_ms)
        return audio_ms - held >= o.short_ms + o.hold_ms

    def ended(self) -> None:
        """The turn ended (by the hold, UtteranceEnd or speech_final)."""
        self.held_end_ms = self.held_reason = None
