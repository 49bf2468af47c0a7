"""Cut a stream of 8 kHz µ-law audio into utterances with Silero VAD (no I/O, no threads).

`Segmenter.feed` takes audio as it arrives and returns what happened in it, in audio order:
`Opened` (voice began: SpeechStarted), `InterimDue` (the open utterance grew by another
`interim_every_ms`: worth a rolling decode), `Closed` (the utterance ended: silence of
`silence_ms`, the length cap, or `flush()` for Finalize). Every event carries the utterance's
PCM so the caller can decode it on a thread without touching the segmenter again.

Memory is bounded: while nobody speaks only `PRE_ROLL_MS` of audio is kept; an open utterance
is cut at `max_utterance_ms`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shared.codecs import ulaw_to_pcm16
from shared.speech.vad import SileroVad, VadModel, VadOptions, VoiceStarted, VoiceStopped

SAMPLE_RATE = 8000
PRE_ROLL_MS = 300  # audio kept before the onset the VAD reports (soft word starts)
TAIL_MS = 200  # audio kept after the end the VAD reports (soft word ends)

Pcm = npt.NDArray[np.int16]


@dataclass(frozen=True)
class SegmentOptions:
    """How one socket's audio is cut."""

    silence_ms: int = 300
    min_speech_ms: int = 96
    interim_every_ms: int = 0  # 0: no interims
    max_utterance_ms: int = 15000


@dataclass(frozen=True)
class Opened:
    """Voice began at `start_ms` of the stream."""

    start_ms: int


@dataclass(frozen=True)
class InterimDue:
    """The open utterance [start_ms, end_ms) so far."""

    start_ms: int
    end_ms: int
    pcm: Pcm


@dataclass(frozen=True)
class Closed:
    """The utterance [start_ms, end_ms) ended; `endpoint` when silence ended it."""

    start_ms: int
    end_ms: int
    pcm: Pcm
    endpoint: bool


SegmentEvent = Opened | InterimDue | Closed


def _ms(samples: int) -> int:
    return samples * 1000 // SAMPLE_RATE


def _samples(ms: int) -> int:
    return ms * SAMPLE_RATE // 1000


class Segmenter:
    """One socket's utterance cutter."""

    def __init__(self, model: VadModel, options: SegmentOptions) -> None:
        self.options = options
        self._vad = SileroVad(
            model,
            VadOptions(min_speech_ms=options.min_speech_ms, min_silence_ms=options.silence_ms),
        )
        self._pcm: Pcm = np.zeros(0, dtype=np.int16)
        self._base = 0  # stream sample index of self._pcm[0]
        self._total = 0  # samples received
        self._open_at: int | None = None  # stream sample where the open utterance starts
        self._next_interim = 0  # stream sample at which the next interim is due
        self._vad_offset = 0  # stream sample where the VAD's clock is 0 (it restarts on flush)

    @property
    def audio_ms(self) -> int:
        """Audio received so far."""
        return _ms(self._total)

    @property
    def speaking(self) -> bool:
        """True while an utterance is open."""
        return self._open_at is not None

    def feed(self, ulaw: bytes) -> list[SegmentEvent]:
        """Account a chunk of µ-law audio; the events it caused, in audio order."""
        self._pcm = np.concatenate((self._pcm, ulaw_to_pcm16(ulaw)))
        self._total += len(ulaw)
        events: list[SegmentEvent] = []
        for vad_event in self._vad.feed(ulaw):
            if isinstance(vad_event, VoiceStarted):
                self._open(vad_event.audio_ms, events)
            elif isinstance(vad_event, VoiceStopped) and self._open_at is not None:
                end = self._vad_start(vad_event.audio_ms + TAIL_MS)
                events.append(self._close(end, endpoint=True))
        if self._open_at is not None:
            length_ms = _ms(self._total - self._open_at)
            if length_ms >= self.options.max_utterance_ms:
                events.append(self._close(self._total, endpoint=False))
                self._open_at = self._next_interim = self._total  # the voice goes on
            elif self.options.interim_every_ms and self._total >= self._next_interim:
                span = self._span(self._total)
                events.append(InterimDue(_ms(self._open_at), self.audio_ms, span))
                self._next_interim = self._total + _samples(self.options.interim_every_ms)
        else:
            self._trim(self._total - _samples(PRE_ROLL_MS + self.options.min_speech_ms + 64))
        return events

    def flush(self) -> Closed | None:
        """Finalize: close the open utterance now (None when nobody is speaking)."""
        if self._open_at is None:
            return None
        closed = self._close(self._total, endpoint=False)
        self._vad.reset()
        self._vad_offset = self._total
        return closed

    def _open(self, vad_ms: int, events: list[SegmentEvent]) -> None:
        start = max(self._base, self._vad_start(vad_ms) - _samples(PRE_ROLL_MS))
        self._open_at = start
        self._next_interim = start + _samples(self.options.interim_every_ms)
        events.append(Opened(_ms(self._vad_start(vad_ms))))

    def _vad_start(self, vad_ms: int) -> int:
        """A VAD time (ms since its last reset) as a stream sample index."""
        return self._vad_offset + _samples(vad_ms)

    def _close(self, end: int, *, endpoint: bool) -> Closed:
        assert self._open_at is not None
        end = min(max(end, self._open_at), self._total)
        closed = Closed(_ms(self._open_at), _ms(end), self._span(end), endpoint)
        self._open_at = None
        self._trim(end - _samples(PRE_ROLL_MS))
        return closed

    def _span(self, end: int) -> Pcm:
        assert self._open_at is not None
        return self._pcm[self._open_at - self._base : end - self._base].copy()

    def _trim(self, keep_from: int) -> None:
        if keep_from > self._base:
            self._pcm = self._pcm[keep_from - self._base :]
            self._base = keep_from
