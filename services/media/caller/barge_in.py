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

* per 32 ms window, whether the caller's own voice is in it (`voice_window`: Silero says
  speech and `speech_gate` says loud over the agent's echo and voiced).

It returns `Interrupt` exactly once per caller utterance, when the agent is speaking and
either the utterance's transcript has >= `min_words` words that are not all backchannels, or
`onset_windows` windows of the caller's own voice came within one run (gaps up to
`onset_gap_ms`) and the transcript so far is not only backchannels (reason "onset": about
200 ms after the voice began, before any word can arrive), or voice has been continuous for >=
`min_speech_ms` (with voice windows fed, `VOICE_RUN_WINDOWS` of them must be in the current
run too) and the
transcript so far is not only backchannels (an empty transcript
counts as "not only backchannels": the STT lags the voice, and waiting for words would add its
latency to every barge-in). Speech while the agent is silent is a normal turn and never an
`Interrupt`.

An "onset" interrupt is a bet made before any word: it returns `FalseInterrupt` (once) when
the utterance turns out to hold only backchannels (at `utterance_ended`, or as soon as its
words are only backchannels and the caller's voice has been quiet `backchannel_settle_ms`), or
no word at all
`false_after_ms` after its voice stopped (a cough that sounded voiced). The agent can then
re-speak what was cut.

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
        "got it",
        # What a recogniser makes of a hum or a short "uh-huh" (Whisper: "Oh"):
        "oh",
        "ah",
        "aha",
        "uh",
        "um",
        "hm",
        "mm hmm",
        "mhmm",
    }
)
VOICE_RUN_WINDOWS = 3
"""With voice windows fed, continuous VAD voice interrupts only with this many in its run (a
knock is one or two periodic windows; the agent's echo, none)."""
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
    onset_windows: int = Field(
        3, ge=0, description="Windows of the caller's own voice that interrupt (0: never)."
    )
    onset_gap_ms: int = Field(
        96, ge=0, description="Longest gap between voice windows within one onset run."
    )
    false_after_ms: int = Field(
        1200, ge=0, description="No word this long after an onset's voice ended: false."
    )
    backchannel_settle_ms: int = Field(
        250, ge=0, description="Only backchannel words, then this much quiet: false at once."
    )

    @field_validator("backchannels")
    @classmethod
    def _normalize(cls, value: frozenset[str]) -> frozenset[str]:
        normalized = frozenset(" ".join(words_of(p)) for p in value)
        if "" in normalized:
            raise ValueError("a backchannel phrase must contain at least one word")
        return normalized


def _covered(words: Sequence[str], phrases: list[tuple[str, ...]]) -> list[bool]:
    """covered[i]: words[:i] splits into consecutive phrases."""
    reachable = [True] + [False] * len(words)
    for i in range(len(words)):
        if not reachable[i]:
            continue
        for phrase in phrases:
            end = i + len(phrase)
            if end <= len(words) and tuple(words[i:end]) == phrase:
                reachable[end] = True
    return reachable


def only_backchannels(words: Sequence[str], backchannels: frozenset[str]) -> bool:
    """True if `words` (non-empty) split into consecutive backchannel phrases."""
    if not words:
        return False
    return _covered(words, [tuple(p.split()) for p in backchannels])[-1]


def may_be_backchannels(words: Sequence[str], backchannels: frozenset[str]) -> bool:
    """True if `words` are backchannels so far: only backchannels, or backchannels followed by
    the start of one ("uh" of "uh huh") that later words may complete."""
    phrases = [tuple(p.split()) for p in backchannels]
    covered = _covered(words, phrases)
    return any(
        ok and any(p[: len(words) - i] == tuple(words[i:]) for p in phrases)
        for i, ok in enumerate(covered)
    )


@dataclass(frozen=True)
class Interrupt:
    """Stop the agent: `reason` says which rule fired, at caller audio time `trigger_audio_ms`."""

    reason: Literal["words", "voice", "onset"]
    trigger_audio_ms: int


@dataclass(frozen=True)
class FalseInterrupt:
    """An "onset" interrupt at `trigger_audio_ms` was wrong: only backchannels (or no words)
    followed; decided at caller audio time `decided_audio_ms`."""

    trigger_audio_ms: int
    decided_audio_ms: int
    words: tuple[str, ...]


Decision = Interrupt | FalseInterrupt


@dataclass
class _Utterance:
    """What the caller has said since the utterance began."""

    finals: list[str] = field(default_factory=list)
    interim: str = ""
    fired: bool = False
    onset_fired_at: int | None = None  # an "onset" interrupt awaiting words that confirm it

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
        self._run_start: int | None = None  # first voice window of the current onset run
        self._run_windows = 0
        self._last_voice_end = 0  # end of the latest voice window
        self._gated = False  # voice windows are fed: continuous voice must be the caller's

    @property
    def confirming(self) -> bool:
        """An "onset" interrupt waits for words (keep feeding voice windows and the clock)."""
        return self._utterance is not None and self._utterance.onset_fired_at is not None

    @property
    def interrupted(self) -> bool:
        """The current utterance interrupted the agent (an undone onset counts as not)."""
        return self._utterance is not None and self._utterance.fired

    @property
    def agent_is_speaking(self) -> bool:
        """Whether the detector believes agent audio is playing."""
        return self._agent_speaking

    def agent_speaking(self, speaking: bool, audio_ms: int) -> Decision | None:
        """Agent audio started or stopped playing (an ongoing utterance may now interrupt)."""
        self._agent_speaking = speaking
        return self._evaluate(audio_ms)

    def voice_started(self, audio_ms: int) -> Decision | None:
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

    def transcript(self, text: str, audio_ms: int, *, is_final: bool) -> Decision | None:
        """Interim or final text of the current utterance, known at `audio_ms`."""
        utterance = self._open_utterance()
        if is_final:
            utterance.finals.append(text)
            utterance.interim = ""
        else:
            utterance.interim = text
        return self._evaluate(audio_ms)

    def voice_window(self, audio_ms: int, voice: bool, window_ms: int) -> Decision | None:
        """The window [audio_ms, audio_ms + window_ms) did (or did not) hold caller voice."""
        end = audio_ms + window_ms
        self._gated = True
        if voice:
            if (
                self._run_start is None
                or audio_ms - self._last_voice_end > self.options.onset_gap_ms
            ):
                self._run_start, self._run_windows = audio_ms, 0
            self._run_windows += 1
            self._last_voice_end = end
        elif self._run_start is not None and end - self._last_voice_end > self.options.onset_gap_ms:
            self._run_start, self._run_windows = None, 0
        return self._evaluate(end)

    def utterance_ended(self, audio_ms: int) -> FalseInterrupt | None:
        """The caller finished the utterance (STT speech_final / UtteranceEnd)."""
        utterance, self._utterance = self._utterance, None
        if self._voice_since is not None:  # VAD has not seen the offset yet: restart the run
            self._voice_since = max(self._voice_since, audio_ms)
        self._run_start, self._run_windows = None, 0
        self._tick(audio_ms)
        if utterance is None or utterance.onset_fired_at is None:
            return None
        words = utterance.words()
        if words and not only_backchannels(words, self.options.backchannels):
            return None
        return FalseInterrupt(utterance.onset_fired_at, self._now_ms, words)

    def advance(self, audio_ms: int) -> Decision | None:
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

    def _evaluate(self, audio_ms: int) -> Decision | None:
        self._tick(audio_ms)
        o = self.options
        if (
            self._utterance is None
            and self._agent_speaking
            and o.onset_windows
            and self._run_windows >= o.onset_windows
        ):
            self._open_utterance()  # the caller's voice opens an utterance before STT does
        utterance = self._utterance
        if utterance is not None and utterance.onset_fired_at is not None:
            return self._confirm(utterance)
        if not self._agent_speaking or utterance is None or utterance.fired:
            return None
        words = utterance.words()
        backchannel_only = only_backchannels(words, o.backchannels)
        reason: Literal["words", "voice", "onset"] | None = None
        if len(words) >= o.min_words and not backchannel_only:
            reason = "words"
        elif o.onset_windows and self._run_windows >= o.onset_windows and not backchannel_only:
            reason = "onset"
            utterance.onset_fired_at = self._now_ms
        elif (
            self._voice_since is not None
            and (not self._gated or self._run_windows >= VOICE_RUN_WINDOWS)
            and self._now_ms - self._voice_since >= o.min_speech_ms
            and not backchannel_only
        ):
            reason = "voice"
        if reason is None:
            return None
        utterance.fired = True
        return Interrupt(reason=reason, trigger_audio_ms=self._now_ms)

    def _confirm(self, utterance: _Utterance) -> FalseInterrupt | None:
        """After an "onset" interrupt: real words confirm it; none (long after the voice) or
        only backchannels (at the utterance's end) undo it."""
        assert utterance.onset_fired_at is not None
        words = utterance.words()
        if words and not may_be_backchannels(words, self.options.backchannels):
            utterance.onset_fired_at = None  # confirmed: a real interruption
            return None
        voice_on = self._run_start is not None or self._voice_since is not None
        quiet_ms = self._now_ms - self._last_voice_end
        if (
            words
            and not voice_on
            and quiet_ms >= self.options.backchannel_settle_ms
            and only_backchannels(words, self.options.backchannels)
        ):  # "mhm", then quiet: no need to wait for STT's end of utterance
            fired_at, self._utterance = utterance.onset_fired_at, None
            return FalseInterrupt(fired_at, self._now_ms, words)
        if words or voice_on or quiet_ms < self.options.false_after_ms:
            return None  # backchannel words wait for the utterance's end; voice may go on
        fired_at, self._utterance = utterance.onset_fired_at, None
        return FalseInterrupt(fired_at, self._now_ms, words)


def heard_text(segments: Iterable[tuple[str, bool]]) -> str:
    """The agent text the caller heard: played segments in order, whitespace-normalized.

    Twilio plays audio and echoes marks in order, so played segments form a prefix in
    practice; a segment is counted only if its own mark was echoed.
    """
    return " ".join(" ".join(text.split()) for text, played in segments if played and text.strip())
