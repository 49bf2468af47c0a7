"""Barge-in policy: when does caller speech over the agent interrupt it? Pure, no I/O.

The detector is fed, all in caller audio time (ms of caller audio since the stream started;
VAD and STT share that clock because media forwards audio to STT unchanged):

* voice onset/offset (`voice_started` / `voice_stopped`, from the local VAD or STT
  `SpeechStarted`; a second onset while voice is already on is ignored, so both sources can
  be fed),
* transcripts (`transcript`, interim or final; finals of one utterance accumulate, the latest
  interim replaces the previous interim),
* the end of a caller utterance (`utterance_ended`, on STT `speech_final` / `UtteranceEnd`),
* whether the agent's audio is playing (`agent_speaking`),
* the audio clock (`advance`, e.g. once per caller frame) so that continuous voice is
  measured even when no other event arrives.

It returns `Interrupt` exactly once per caller utterance, when the agent is speaking and
either the utterance's transcript has >= `min_words` words that are not all backchannels, or
voice has been continuous for >= `min_speech_ms` and the transcript so far is not only
backchannels (an empty transcript counts as "not only backchannels": the STT lags the voice,
and waiting for words would add its latency to every barge-in). Speech while the agent is
silent is a normal turn and never an `Interrupt`.

Words: lower-cased, `’` read as `'`, hyphens read as spaces ("uh-huh" == "uh huh"), every
other character that is not a letter, digit or apostrophe dropped. A transcript is "only
backchannels" when its words can be split into consecutive backchannel phrases.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_BACKCHANNELS = frozenset(
    {
        "mhm",
        "mm",
        "hmm",
        "uh-huh",
        "uh huh",
        "yeah",
        "yep",
        "yes",
        "okay",
        "ok",
        "right",
        "sure",
        "alright",
        "i see",
    }
)
_DROP_RE = re.compile(r"[^\w' ]+", re.UNICODE)


def words_of(text: str) -> tuple[str, ...]:
    """Normalized words of `text` (see the module docstring)."""
    cleaned = text.lower().replace("’", "'").replace("-", " ").replace("_", " ")
    cleaned = _DROP_RE.sub(" ", cleaned)
    return tuple(w for w in (t.strip("'") for t in cleaned.split()) if w)


class BargeInOptions(BaseModel):
    """Thresholds of the barge-in policy."""

    model_config = ConfigDict(frozen=True)

    min_words: int = Field(2, ge=1, description="Words (not all backchannels) that interrupt.")
    min_speech_ms: int = Field(600, ge=0, description="Continuous voice that interrupts.")
    backchannels: frozenset[str] = Field(
        DEFAULT_BACKCHANNELS,
        validate_default=True,
        description="Phrases that never interrupt on their own (normalized like words_of).",
    )

    @field_validator("backchannels")
    @classmethod
    def _normalize(cls, value: frozenset[str]) -> frozenset[str]:
        normalized = frozenset(" ".join(words_of(p)) for p in value)
        if "" in normalized:
            raise ValueError("a backchannel phrase must contain at least one word")
        return normalized


def only_backchannels(words: Sequence[str], backchannels: frozenset[str]) -> bool:
    """True if `words` (non-empty) split into consecutive backchannel phrases."""
    if not words:
        return False
    phrases = [tuple(p.split()) for p in backchannels]
    reachable = [True] + [False] * len(words)  # reachable[i]: words[:i] is covered
    for i in range(len(words)):
        if not reachable[i]:
            continue
        for phrase in phrases:
            end = i + len(phrase)
            if end <= len(words) and tuple(words[i:end]) == phrase:
                reachable[end] = True
    return reachable[-1]


@dataclass(frozen=True)
class Interrupt:
    """Stop the agent: `reason` says which rule fired, at caller audio time `trigger_audio_ms`."""

    reason: Literal["words", "voice"]
    trigger_audio_ms: int


@dataclass
class _Utterance:
    """What the caller has said since the utterance began."""

    finals: list[str] = field(default_factory=list)
    interim: str = ""
    fired: bool = False

    def words(self) -> tuple[str, ...]:
        return words_of(" ".join([*self.finals, self.interim]))


class BargeInDetector:
    """One call's barge-in decisions (see the module docstring for the rules)."""

    def __init__(self, options: BargeInOptions | None = None) -> None:
        self.options = options or BargeInOptions()
        self._agent_speaking = False
        self._voice_since: int | None = None
        self._utterance: _Utterance | None = None
        self._now_ms = 0

    @property
    def agent_is_speaking(self) -> bool:
        """Whether the detector believes agent audio is playing."""
        return self._agent_speaking

    def agent_speaking(self, speaking: bool, audio_ms: int) -> Interrupt | None:
        """Agent audio started or stopped playing (an ongoing utterance may now interrupt)."""
        self._agent_speaking = speaking
        return self._evaluate(audio_ms)

    def voice_started(self, audio_ms: int) -> Interrupt | None:
        """Caller voice onset at `audio_ms` (ignored while voice is already on)."""
        if self._voice_since is None:
            self._voice_since = audio_ms
        self._open_utterance()
        return self._evaluate(audio_ms)

    def voice_stopped(self, audio_ms: int) -> Interrupt | None:
        """Caller voice offset; the utterance stays open until `utterance_ended`."""
        self._voice_since = None
        self._tick(audio_ms)
        return None

    def transcript(self, text: str, audio_ms: int, *, is_final: bool) -> Interrupt | None:
        """Interim or final text of the current utterance, known at `audio_ms`."""
        utterance = self._open_utterance()
        if is_final:
            utterance.finals.append(text)
            utterance.interim = ""
        else:
            utterance.interim = text
        return self._evaluate(audio_ms)

    def utterance_ended(self, audio_ms: int) -> None:
        """The caller finished the utterance (STT speech_final / UtteranceEnd)."""
        self._utterance = None
        if self._voice_since is not None:  # VAD has not seen the offset yet: restart the run
            self._voice_since = max(self._voice_since, audio_ms)
        self._tick(audio_ms)

    def advance(self, audio_ms: int) -> Interrupt | None:
        """The caller audio clock reached `audio_ms` (lets continuous voice reach its limit)."""
        return self._evaluate(audio_ms)

    # ------------------------------------------------------------------ internals
    def _tick(self, audio_ms: int) -> None:
        if isinstance(audio_ms, bool) or not isinstance(audio_ms, int) or audio_ms < 0:
            raise ValueError(f"audio_ms must be a non-negative int, got {audio_ms!r}")
        self._now_ms = max(self._now_ms, audio_ms)

    def _open_utterance(self) -> _Utterance:
        if self._utterance is None:
            self._utterance = _Utterance()
        return self._utterance

    def _evaluate(self, audio_ms: int) -> Interrupt | None:
        self._tick(audio_ms)
        utterance = self._utterance
        if not self._agent_speaking or utterance is None or utterance.fired:
            return None
        o = self.options
        words = utterance.words()
        backchannel_only = only_backchannels(words, o.backchannels)
        reason: Literal["words", "voice"] | None = None
        if len(words) >= o.min_words and not backchannel_only:
            reason = "words"
        elif (
            self._voice_since is not None
            and self._now_ms - self._voice_since >= o.min_speech_ms
            and not backchannel_only
        ):
            reason = "voice"
        if reason is None:
            return None
        utterance.fired = True
        return Interrupt(reason=reason, trigger_audio_ms=self._now_ms)


def heard_text(segments: Iterable[tuple[str, bool]]) -> str:
    """The agent text the caller heard: played segments in order, whitespace-normalized.

    Twilio plays audio and echoes marks in order, so played segments form a prefix in
    practice; a segment is counted only if its own mark was echoed.
    """
    return " ".join(" ".join(text.split()) for text, played in segments if played and text.strip())
