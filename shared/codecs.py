"""G.711 µ-law <-> 16-bit linear PCM with numpy lookup tables, and resampling via soxr."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

_BIAS = 0x84
_CLIP = 32635


def _build_decode_table() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = ((mantissa << 3) + _BIAS) << exponent
    sample = np.where(sign != 0, _BIAS - magnitude, magnitude - _BIAS)
    return sample.astype(np.int16)


def _build_encode_table() -> npt.NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int32)
    sign = np.where(pcm < 0, 0x80, 0)
    mag = np.minimum(np.abs(pcm), _CLIP) + _BIAS
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    table: npt.NDArray[np.uint8] = (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)
    return table


ULAW_TO_PCM16: npt.NDArray[np.int16] = _build_decode_table()
PCM16_TO_ULAW: npt.NDArray[np.uint8] = _build_encode_table()
ULAW_SILENCE = 0xFF


def ulaw_to_pcm16(data: bytes) -> npt.NDArray[np.int16]:
    """Decode µ-law bytes into int16 samples."""
    return ULAW_TO_PCM16[np.frombuffer(data, dtype=np.uint8)]


def pcm16_to_ulaw(samples: npt.NDArray[np.int16]) -> bytes:
    """Encode int16 samples as µ-law bytes."""
    idx = samples.astype(np.int32) + 32768
    return PCM16_TO_ULAW[idx].tobytes()


def pcm16_bytes_to_ulaw(data: bytes) -> bytes:
    """Encode little-endian 16-bit PCM bytes as µ-law."""
    return pcm16_to_ulaw(np.frombuffer(data, dtype="<i2"))


def ulaw_to_pcm16_bytes(data: bytes) -> bytes:
    """Decode µ-law bytes into little-endian 16-bit PCM bytes."""
    return ulaw_to_pcm16(data).astype("<i2").tobytes()


def resample_pcm16(
    samples: npt.NDArray[np.int16], in_rate: int, out_rate: int
) -> npt.NDArray[np.int16]:
    """Resample int16 mono audio with soxr (high quality)."""
    if in_rate == out_rate:
        return samples
    out = soxr.resample(samples, in_rate, out_rate)
    return np.asarray(out, dtype=np.int16)


def ulaw_rms(data: bytes) -> float:
    """Root-mean-square level of µ-law audio in linear units (0 for digital silence)."""
    if not data:
        return 0.0
    pcm = ulaw_to_pcm16(data).astype(np.float64)
    return float(np.sqrt(np.mean(pcm * pcm)))
