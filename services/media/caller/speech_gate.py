"""Is this caller audio the caller's own voice, or the agent's echo, a TV, a cough? Pure, no I/O.

Silero VAD hears any speech as speech, including the agent's own voice leaking back on the
line (echo) and a TV in the room. The gate adds two measurements per 32 ms window (the VAD's
windows: 256 samples at 8 kHz, aligned with `vad.SileroVad` when both are fed the same frames
from the same reset):

* level over the line's background: the RMS level (dBFS) must reach `min_level_dbfs` and stand
  `over_echo_db` above the background level. The background is what the line carries when the
  caller is not talking: while the agent talks, mostly its echo. It is tracked as an envelope
  of the windows that are not loud, rising by at most `attack_db_per_s` (so the first
  syllable of the caller's own voice, which ramps up over 50-100 ms, does not drag it along)
  and falling by `release_db_per_s`;
* voicing: the peak of the normalised autocorrelation at pitch lags (60-400 Hz). Vowels are
  periodic (0.5-0.95); coughs, knocks, clatter and traffic are not (under 0.35).

A window is `voice` when it is loud and voiced. Cost: one dot product per window, plus an
autocorrelation (two FFTs of 512 points) for loud windows only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from shared.codecs import ulaw_to_pcm16

SAMPLE_RATE = 8000
WINDOW_SAMPLES = 256  # the VAD's window
WINDOW_MS = WINDOW_SAMPLES * 1000 // SAMPLE_RATE  # 32
MIN_LAG, MAX_LAG = SAMPLE_RATE // 400, SAMPLE_RATE // 60  # pitch 400 .. 60 Hz
SILENCE_DBFS = -90.0

FloatArray = npt.NDArray[np.float64]


class SpeechGateOptions(BaseModel):
    """Thresholds of the caller-voice gate."""

    model_config = ConfigDict(frozen=True)

    min_level_dbfs: float = Field(
        -32.0, le=0.0, description="A caller's own voice reaches this RMS level (dBFS)."
    )
    over_echo_db: float = Field(
        10.0, ge=0.0, description="How far above the line's background (echo) the voice must be."
    )
    attack_db_per_s: float = Field(
        50.0, gt=0.0, description="How fast the background estimate may rise."
    )
    release_db_per_s: float = Field(
        20.0, gt=0.0, description="How fast the background estimate falls after a loud stretch."
    )
    min_voicing: float = Field(
        0.5, gt=0.0, lt=1.0, description="Pitch periodicity a voiced window reaches."
    )


@dataclass(frozen=True)
class GateWindow:
    """One 32 ms window: where it starts (audio ms since reset) and what was measured."""

    audio_ms: int
    level_dbfs: float
    background_dbfs: float
    voicing: float
    loud: bool
    voiced: bool

    @property
    def voice(self) -> bool:
        """Loud over the background and periodic: the caller's own voice (a vowel of it)."""
        return self.loud and self.voiced


def level_dbfs(window: FloatArray) -> float:
    """RMS level of `window` (samples in [-1, 1]) in dB of full scale."""
    energy = float(np.dot(window, window)) / max(window.size, 1)
    return SILENCE_DBFS if energy <= 1e-9 else 10.0 * float(np.log10(energy))


def voicing(window: FloatArray) -> float:
    """Peak normalised autocorrelation of `window` at pitch lags (0: none, 1: periodic)."""
    x = window - window.mean()
    n = x.size
    spectrum = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(spectrum * np.conj(spectrum))[: MAX_LAG + 1]
    if ac[0] <= 1e-9:
        return 0.0
    # Normalise each lag by the energy of the overlapping parts (an unbiased estimate).
    squares = np.cumsum(x[::-1] ** 2)[::-1]  # squares[k] = sum(x[k:]**2)
    head = np.cumsum(x**2)  # head[k] = sum(x[:k+1]**2)
    lags = np.arange(MIN_LAG, MAX_LAG + 1)
    norm = np.sqrt(squares[lags] * head[n - 1 - lags]) + 1e-12
    return float(np.clip((ac[lags] / norm).max(), 0.0, 1.0))


class SpeechGate:
    """One call's gate: feed µ-law frames, get a `GateWindow` per completed 32 ms window."""

    def __init__(self, options: SpeechGateOptions | None = None) -> None:
        self.options = options or SpeechGateOptions()
        self._release_per_window = self.options.release_db_per_s * WINDOW_MS / 1000.0
        self._attack_per_window = self.options.attack_db_per_s * WINDOW_MS / 1000.0
        self.reset()

    def reset(self) -> None:
        """Forget the audio and the background; audio time restarts at 0."""
        self.restart()
        self.background_dbfs = SILENCE_DBFS

    def restart(self) -> None:
        """Audio time restarts at 0 (windows align with a VAD reset at the same frame); the
        background is kept: the echo level of the agent's previous turn is the best guess for
        the next one's first second, while the estimate is still rising."""
        self._pending: FloatArray = np.zeros(0)
        self._windows = 0

    def feed(self, frame: bytes) -> list[GateWindow]:
        """Account one µ-law chunk; return the windows it completed."""
        samples = ulaw_to_pcm16(bytes(frame)).astype(np.float64) / 32768.0
        self._pending = np.concatenate((self._pending, samples))
        out: list[GateWindow] = []
        while self._pending.size >= WINDOW_SAMPLES:
            window, self._pending = (
                self._pending[:WINDOW_SAMPLES],
                self._pending[WINDOW_SAMPLES:],
            )
            out.append(self._measure(window))
        return out

    def _measure(self, window: FloatArray) -> GateWindow:
        o = self.options
        level = level_dbfs(window)
        background = self.background_dbfs
        loud = level >= o.min_level_dbfs and level >= background + o.over_echo_db
        if loud:
            self.background_dbfs = background - self._release_per_window
            periodicity = voicing(window)
        else:  # not the caller: the background (echo, hiss) is at least this loud
            rise = min(level, background + self._attack_per_window)
            self.background_dbfs = max(rise, background - self._release_per_window)
            periodicity = 0.0
        at = self._windows * WINDOW_MS
        self._windows += 1
        return GateWindow(
            audio_ms=at,
            level_dbfs=level,
            background_dbfs=background,
            voicing=periodicity,
            loud=loud,
            voiced=periodicity >= o.min_voicing,
        )
