"""Synthetic speech-like audio for the caller simulator: voiced syllables (a gliding pitch
shaped by vowel formants) with consonant-like bursts, which Silero VAD hears as voice, unlike a
steady tone. Deterministic (seeded); rendered (and base64-encoded) once per process."""

from __future__ import annotations

import base64
from functools import cache

import numpy as np
import numpy.typing as npt

from shared.codecs import pcm16_to_ulaw

SR = 8000
FRAME_BYTES = 160
Signal = npt.NDArray[np.float64]
VOWELS = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480)]
"""(F1, F2, F3) of a few English vowels, Hz."""


def speech_like(syllables: int, seed: int, amp: float = 0.3) -> tuple[Signal, int]:
    """Voiced syllables separated by short bursts or gaps; returns the signal and the sample
    where the first voiced syllable starts."""
    rng = np.random.default_rng(seed)
    parts: list[Signal] = []
    first_voiced: int | None = None
    for _ in range(syllables):
        gap = int(rng.uniform(0.03, 0.08) * SR)
        burst = rng.normal(0, 0.15, gap) * np.hanning(gap) if rng.random() < 0.6 else np.zeros(gap)
        parts.append(burst)
        if first_voiced is None:
            first_voiced = sum(p.size for p in parts)
        n = int(rng.uniform(0.14, 0.26) * SR)
        glide = 1 + 0.15 * np.linspace(0.5, -0.5, n) * rng.choice([-1, 1])
        f0 = rng.uniform(100, 150) * glide
        phase = 2 * np.pi * np.cumsum(f0) / SR
        formants = VOWELS[rng.integers(len(VOWELS))]
        voiced = np.zeros(n)
        for k in range(1, int(3500 / f0.max())):
            gain = 0.01 + sum(
                np.exp(-0.5 * ((k * f0 - f) / (80 + 0.05 * f)) ** 2) * 0.9**i
                for i, f in enumerate(formants)
            )
            voiced += gain * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
        envelope = np.sin(np.pi * np.arange(n) / n) ** 0.6
        parts.append(voiced * envelope / np.abs(voiced).max())
    assert first_voiced is not None
    return np.concatenate(parts) * amp, first_voiced


def to_ulaw(signal: Signal) -> bytes:
    """Float samples in [-1, 1] as µ-law bytes."""
    return pcm16_to_ulaw((np.clip(signal, -1, 1) * 32767).astype(np.int16))


@cache
def voice_loop() -> bytes:
    """About 8 s of speech-like µ-law, trimmed to whole frames, with no digital-silence bytes
    (0xFF / 0x7F become their neighbours) so every frame is audibly not silence."""
    signal, _ = speech_like(syllables=32, seed=7)
    data = bytearray(to_ulaw(signal))
    for i, b in enumerate(data):
        if b in (0xFF, 0x7F):
            data[i] = b - 1
    return bytes(data[: len(data) // FRAME_BYTES * FRAME_BYTES])


@cache
def _voice_frames() -> tuple[bytes, ...]:
    loop = voice_loop()
    return tuple(loop[i : i + FRAME_BYTES] for i in range(0, len(loop), FRAME_BYTES))


@cache
def _voice_frames_b64() -> tuple[str, ...]:
    return tuple(base64.b64encode(frame).decode() for frame in _voice_frames())


def speech_frame(index: int) -> bytes:
    """Frame `index` of the looping voice (20 ms, 160 bytes)."""
    frames = _voice_frames()
    return frames[index % len(frames)]


def speech_frame_b64(index: int) -> str:
    """``speech_frame(index)`` base64-encoded, as a Media Streams payload (encoded once per
    process: callers send one every 20 ms)."""
    frames = _voice_frames_b64()
    return frames[index % len(frames)]
