"""Pure (no I/O) scripted Deepgram live-STT engine.

Bytes of audio go in, Deepgram ``/v1/listen`` JSON messages (as dicts) come out — the
same shape the real service sends (see /work/shared/protocols/deepgram-live-stt.md).
What is "heard" is scripted: ``add_utterance(text, start_ms, end_ms)`` in *audio time*
(milliseconds of audio fed to this engine since it was created).

Timeline of one utterance (all in audio time):

* ``start_ms``: ``SpeechStarted`` (if ``vad_events``).
* every ``interim_every_ms`` after ``start_ms`` while ``t < end_ms``: interim ``Results``
  (``is_final`` false) with the words whose end time is ``<= t`` (skipped while empty),
  if ``interim_results``;
* ``end_ms`` (if before the final): one more interim with every word, as Deepgram sends the
  hypothesis that holds the last word while endpointing still waits for silence (the text a
  preemptive reply starts from; issue 17). ``interim_text`` scripts a different hypothesis
  for the interims (a misheard word the final corrects).
* ``end_ms + endpointing_ms``: final ``Results`` (``is_final`` and ``speech_final`` true);
  with endpointing disabled (``None``) the final comes at ``end_ms + 500`` with
  ``speech_final`` false.
* ``max(end_ms + utterance_end_ms, final time)``: ``UtteranceEnd`` (if
  ``utterance_end_ms`` and ``interim_results``), suppressed when another utterance starts
  before it is due.

The transcript is the scripted text verbatim (whitespace-normalised) whatever the
punctuate/smart_format options are; ``word`` is the lower-cased token without
punctuation and ``punctuated_word`` the token as scripted. Silence produces no messages.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DgMessage = dict[str, Any]

NO_ENDPOINTING_FINAL_DELAY_MS = 500
WORD_CONFIDENCE = 0.99
_STRIP_RE = re.compile(r"[^\w']+", re.UNICODE)


@dataclass(frozen=True)
class ModelInfo:
    """Model identity reported in Results.metadata and the summary Metadata."""

    name: str = "general-nova-3"
    version: str = "2025-01-01.0"
    arch: str = "nova-3"
    uuid: str = "5a1b5c2e-0000-4000-8000-00000000d3e0"


@dataclass(frozen=True)
class SttEngineOptions:
    """Stream parameters (mirrors the /v1/listen query) and simulator knobs."""

    sample_rate: int = 8000
    bytes_per_sample: int = 1
    channels: int = 1
    interim_results: bool = False
    endpointing_ms: int | None = 10
    utterance_end_ms: int | None = None
    vad_events: bool = False
    interim_every_ms: int = 200
    request_id: str = "00000000-0000-4000-8000-000000000000"
    model: ModelInfo = field(default_factory=ModelInfo)


def _word_of(token: str) -> str:
    stripped = _STRIP_RE.sub("", token).lower()
    return stripped or token.lower()


def _sec(ms: float) -> float:
    return round(ms / 1000.0, 3)


@dataclass
class _Utterance:
    """One scripted utterance and its emission progress."""

    tokens: list[str]
    start_ms: float
    end_ms: float
    final_due_ms: float
    speech_final: bool
    ue_due_ms: float | None
    next_interim_ms: float
    seg_start_ms: float = 0.0
    first_word: int = 0
    interim_tokens: list[str] | None = None  # the interims' hypothesis when it differs
    speech_started_sent: bool = False
    end_interim_sent: bool = False
    final_sent: bool = False
    ue_sent: bool = False
    emitted_words: bool = False

    def word_span(self, i: int) -> tuple[float, float]:
        step = (self.end_ms - self.start_ms) / len(self.tokens)
        return self.start_ms + i * step, self.start_ms + (i + 1) * step

    def words_done_at(self, t_ms: float) -> int:
        """Number of words (from index 0) whose end time is <= t_ms."""
        n = 0
        while n < len(self.tokens) and self.word_span(n)[1] <= t_ms + 1e-9:
            n += 1
        return n


class SttScriptEngine:
    """Turns fed audio into scripted Deepgram live-STT messages (pure, no I/O)."""

    def __init__(
        self,
        options: SttEngineOptions | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.options = options or SttEngineOptions()
        if self.options.sample_rate <= 0 or self.options.bytes_per_sample <= 0:
            raise ValueError("sample_rate and bytes_per_sample must be positive")
        self._now = now or (lambda: datetime.now(UTC))
        self._utterances: list[_Utterance] = []
        self._sha = hashlib.sha256()
        self._bytes = 0
        self._closed = False
        # Audio time of the earliest pending event (-inf: unknown, recompute): lets feed()
        # skip the scan of every utterance on the 20 ms frames where nothing is due.
        self._next_due = -math.inf

    # ------------------------------------------------------------------ clock
    @property
    def bytes_received(self) -> int:
        return self._bytes

    @property
    def audio_ms(self) -> float:
        o = self.options
        return self._bytes * 1000.0 / (o.sample_rate * o.bytes_per_sample * o.channels)

    @property
    def closed(self) -> bool:
        return self._closed

    # ---------------------------------------------------------------- script
    def add_utterance(
        self, text: str, start_ms: float, end_ms: float, interim_text: str | None = None
    ) -> None:
        """Script `text` as spoken over [start_ms, end_ms) of this stream's audio time
        (`interim_text`: what the interim results say instead, same number of words)."""
        tokens = text.split()
        interim_tokens = interim_text.split() if interim_text else None
        if interim_tokens is not None and len(interim_tokens) != len(tokens):
            raise ValueError("interim_text must have as many words as text")
        if not tokens:
            raise ValueError("utterance text must contain at least one word")
        if start_ms < 0 or end_ms <= start_ms:
            raise ValueError("need 0 <= start_ms < end_ms")
        o = self.options
        if o.endpointing_ms is None:
            final_due, speech_final = end_ms + NO_ENDPOINTING_FINAL_DELAY_MS, False
        else:
            final_due, speech_final = end_ms + o.endpointing_ms, True
        ue_due: float | None = None
        if o.utterance_end_ms is not None and o.interim_results:
            ue_due = max(end_ms + o.utterance_end_ms, final_due)
        self._utterances.append(
            _Utterance(
                tokens=tokens,
                start_ms=start_ms,
                end_ms=end_ms,
                final_due_ms=final_due,
                speech_final=speech_final,
                ue_due_ms=ue_due,
                next_interim_ms=start_ms + o.interim_every_ms,
                seg_start_ms=start_ms,
                interim_tokens=interim_tokens,
            )
        )
        self._next_due = -math.inf

    def remove_utterance(self, text: str, start_ms: float, end_ms: float) -> bool:
        """Forget a scripted utterance whose final has not gone out (a registration its caller
        withdrew because it came too late to be spoken in its window); True if removed."""
        tokens = text.split()
        for i, utt in enumerate(self._utterances):
            same = (utt.tokens, utt.start_ms, utt.end_ms) == (tokens, start_ms, end_ms)
            if same and not utt.final_sent:
                del self._utterances[i]
                self._next_due = -math.inf
                return True
        return False

    # ------------------------------------------------------------------ audio
    def feed(self, data: bytes) -> list[DgMessage]:
        """Account `data` as received audio; return messages now due, in audio-time order."""
        if self._closed:
            raise RuntimeError("engine is closed")
        self._sha.update(data)
        self._bytes += len(data)
        return self._drain(self.audio_ms)

    def finalize(self) -> list[DgMessage]:
        """Flush words spoken so far of pending utterances as from_finalize finals."""
        now = self.audio_ms
        out = self._drain(now)
        for utt in self._utterances:
            if utt.final_sent or utt.start_ms > now:
                continue
            done = utt.words_done_at(now)
            if done <= utt.first_word:
                continue
            out.append(
                self._results(utt, utt.first_word, done, now, final=True, from_finalize=True)
            )
            utt.emitted_words = True
            if done >= len(utt.tokens):
                utt.final_sent = True
            else:
                utt.first_word = done
                utt.seg_start_ms = now
        self._next_due = -math.inf
        return out

    def close(self) -> list[DgMessage]:
        """finalize() then the summary Metadata message; the engine accepts no more audio."""
        if self._closed:
            return []
        out = self.finalize()
        self._closed = True
        o = self.options
        created = self._now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        out.append(
            {
                "type": "Metadata",
                "transaction_key": "deprecated",
                "request_id": o.request_id,
                "sha256": self._sha.hexdigest(),
                "created": created,
                "duration": round(self.audio_ms / 1000.0, 3),
                "channels": o.channels,
                "models": [o.model.uuid],
                "model_info": {
                    o.model.uuid: {
                        "name": o.model.name,
                        "version": o.model.version,
                        "arch": o.model.arch,
                    }
                },
            }
        )
        return out

    # -------------------------------------------------------------- internals
    def _next_event(self, utt: _Utterance) -> tuple[float, int] | None:
        """(audio time, kind) of the utterance's next pending event; kinds 0..3."""
        o = self.options
        if o.vad_events and not utt.speech_started_sent:
            return utt.start_ms, 0
        if not utt.final_sent:
            if o.interim_results and utt.next_interim_ms < utt.end_ms:
                return utt.next_interim_ms, 1
            if o.interim_results and not utt.end_interim_sent and utt.end_ms < utt.final_due_ms:
                return utt.end_ms, 1
            return utt.final_due_ms, 2
        if utt.ue_due_ms is not None and not utt.ue_sent and utt.emitted_words:
            return utt.ue_due_ms, 3
        return None

    def _drain(self, now: float) -> list[DgMessage]:
        out: list[DgMessage] = []
        if now + 1e-9 < self._next_due:
            return out
        while True:
            best: tuple[float, int, int] | None = None
            next_due = math.inf
            for idx, utt in enumerate(self._utterances):
                ev = self._next_event(utt)
                if ev is None:
                    continue
                if ev[0] <= now + 1e-9:
                    key = (ev[0], ev[1], idx)
                    if best is None or key < best:
                        best = key
                elif ev[0] < next_due:
                    next_due = ev[0]
            if best is None:
                self._next_due = next_due
                return out
            msg = self._emit(self._utterances[best[2]], best[1])
            if msg is not None:
                out.append(msg)

    def _emit(self, utt: _Utterance, kind: int) -> DgMessage | None:
        if kind == 0:
            utt.speech_started_sent = True
            return {"type": "SpeechStarted", "channel": [0], "timestamp": _sec(utt.start_ms)}
        if kind == 1:
            t = utt.next_interim_ms
            if t < utt.end_ms:
                utt.next_interim_ms += self.options.interim_every_ms
            else:
                t, utt.end_interim_sent = utt.end_ms, True
            done = utt.words_done_at(t)
            if done <= utt.first_word:
                return None
            return self._results(utt, utt.first_word, done, t, final=False, from_finalize=False)
        if kind == 2:
            utt.final_sent = True
            utt.emitted_words = True
            return self._results(
                utt, utt.first_word, len(utt.tokens), utt.end_ms, final=True, from_finalize=False
            )
        utt.ue_sent = True
        if self._speech_between(utt.end_ms, utt.ue_due_ms or utt.end_ms, utt):
            return None
        return {
            "type": "UtteranceEnd",
            "channel": [0, self.options.channels],
            "last_word_end": _sec(utt.end_ms),
        }

    def _speech_between(self, lo: float, hi: float, me: _Utterance) -> bool:
        return any(u is not me and lo < u.start_ms <= hi for u in self._utterances)

    def _results(
        self,
        utt: _Utterance,
        first: int,
        last: int,
        until_ms: float,
        *,
        final: bool,
        from_finalize: bool,
    ) -> DgMessage:
        o = self.options
        tokens = utt.tokens if final or utt.interim_tokens is None else utt.interim_tokens
        words: list[DgMessage] = []
        for i in range(first, last):
            w_start, w_end = utt.word_span(i)
            words.append(
                {
                    "word": _word_of(tokens[i]),
                    "start": _sec(w_start),
                    "end": _sec(w_end),
                    "confidence": WORD_CONFIDENCE,
                    "punctuated_word": tokens[i],
                }
            )
        transcript = " ".join(tokens[first:last])
        return {
            "type": "Results",
            "channel_index": [0, o.channels],
            "duration": _sec(until_ms - utt.seg_start_ms),
            "start": _sec(utt.seg_start_ms),
            "is_final": final,
            "speech_final": final and utt.speech_final and not from_finalize,
            "from_finalize": from_finalize,
            "channel": {
                "alternatives": [
                    {
                        "transcript": transcript,
                        "confidence": WORD_CONFIDENCE if words else 0.0,
                        "words": words,
                    }
                ]
            },
            "metadata": {
                "request_id": o.request_id,
                "model_info": {
                    "name": o.model.name,
                    "version": o.model.version,
                    "arch": o.model.arch,
                },
                "model_uuid": o.model.uuid,
            },
        }
