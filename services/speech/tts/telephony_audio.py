"""Synthesised float audio -> the encoding and rate a client asked for (pure numpy + soxr)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from services.speech.tts.aura_protocol import AudioFormat
from shared.codecs import pcm16_to_ulaw, resample_pcm16


def encode(audio: npt.NDArray[np.float32], in_rate: int, fmt: AudioFormat) -> bytes:
    """Mono float32 in [-1, 1] at `in_rate` -> raw µ-law or little-endian linear16 bytes."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
    pcm = resample_pcm16(pcm, in_rate, fmt.sample_rate)
    if fmt.encoding == "mulaw":
        return pcm16_to_ulaw(pcm)
    return pcm.astype("<i2").tobytes()


def frames(audio: bytes, frame_bytes: int) -> list[bytes]:
    """Cut audio into frames of `frame_bytes` (the last may be shorter)."""
    return [audio[off : off + frame_bytes] for off in range(0, len(audio), frame_bytes)]
