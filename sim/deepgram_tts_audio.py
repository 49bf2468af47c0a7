"""Pure audio helpers for the Deepgram Aura TTS simulator (deterministic fake speech)."""

from __future__ import annotations

import struct
from collections import OrderedDict

import numpy as np
import numpy.typing as npt

BYTES_PER_SAMPLE = {"linear16": 2, "mulaw": 1, "alaw": 1}
WAV_FORMAT_TAG = {"linear16": 1, "alaw": 6, "mulaw": 7}
AMPLITUDE = 0.3 * 32767
_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def samples_for_text(text: str, ms_per_char: float, sample_rate: int) -> int:
    """Number of samples the simulator produces for `text`."""
    return round(len(text) * ms_per_char * sample_rate / 1000)


def audio_bytes_for_text(
    text: str, ms_per_char: float, sample_rate: int, bytes_per_sample: int
) -> int:
    """Exact byte length of the simulated audio for `text` (the audio-length rule)."""
    return samples_for_text(text, ms_per_char, sample_rate) * bytes_per_sample


def tone_pcm(text: str, ms_per_char: float, sample_rate: int) -> npt.NDArray[np.int16]:
    """int16 PCM: one tone per character (pitch from the character), continuous phase."""
    n = samples_for_text(text, ms_per_char, sample_rate)
    if n == 0:
        return np.zeros(0, dtype=np.int16)
    char_idx = np.minimum(np.arange(n) * len(text) // n, len(text) - 1)
    pitch = np.array([220.0 + (ord(c) % 48) * 15.0 for c in text])
    phase = np.cumsum(2.0 * np.pi * pitch[char_idx] / sample_rate)
    return (AMPLITUDE * np.sin(phase + np.pi / 4)).astype(np.int16)


def mulaw_encode(pcm: npt.NDArray[np.int16]) -> bytes:
    """ITU-T G.711 µ-law encoding of int16 samples (bit-exact with CPython audioop)."""
    x = pcm.astype(np.int32) >> 2
    mask = np.where(x < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(x), 8159) + 0x21
    seg = np.searchsorted(_ULAW_SEG_END, mag, side="left").astype(np.int32)
    uval = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | ((mag >> (seg + 1)) & 0x0F))
    return ((uval ^ mask) & 0xFF).astype(np.uint8).tobytes()


def alaw_encode(pcm: npt.NDArray[np.int16]) -> bytes:
    """ITU-T G.711 A-law encoding of int16 samples."""
    x = pcm.astype(np.int32) >> 3
    mask = np.where(x >= 0, 0xD5, 0x55)
    x = np.where(x >= 0, x, -x - 1)
    seg = np.searchsorted(_ALAW_SEG_END, x, side="left").astype(np.int32)
    low = np.where(seg < 2, (x >> 1) & 0x0F, (x >> np.maximum(seg, 1)) & 0x0F)
    aval = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | low)
    return ((aval ^ mask) & 0xFF).astype(np.uint8).tobytes()


class _AudioCache:
    """Least-recently-used texts' audio, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, float, int, str], bytes] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple[str, float, int, str]) -> bytes | None:
        audio = self._items.get(key)
        if audio is not None:
            self._items.move_to_end(key)
        return audio

    def put(self, key: tuple[str, float, int, str], audio: bytes) -> None:
        if len(audio) > self.max_bytes // 8 or key in self._items:
            return
        self._items[key] = audio
        self._bytes += len(audio)
        while self._bytes > self.max_bytes:
            self._bytes -= len(self._items.popitem(last=False)[1])


_synth_cache = _AudioCache(16 * 2**20)


def synthesize(text: str, ms_per_char: float, sample_rate: int, encoding: str) -> bytes:
    """Headerless audio in `encoding` whose length is exactly audio_bytes_for_text().
    Deterministic, so texts spoken again (every bench call says the same sentences) come
    from a small cache instead of being rendered again."""
    key = (text, ms_per_char, sample_rate, encoding)
    audio = _synth_cache.get(key)
    if audio is None:
        audio = _synthesize(text, ms_per_char, sample_rate, encoding)
        _synth_cache.put(key, audio)
    return audio


def _synthesize(text: str, ms_per_char: float, sample_rate: int, encoding: str) -> bytes:
    pcm = tone_pcm(text, ms_per_char, sample_rate)
    if encoding == "mulaw":
        return mulaw_encode(pcm)
    if encoding == "alaw":
        return alaw_encode(pcm)
    if encoding == "linear16":
        return pcm.astype("<i2").tobytes()
    raise ValueError(f"unsupported encoding {encoding!r}")


def wav_header(data_len: int, sample_rate: int, encoding: str) -> bytes:
    """Canonical 44-byte RIFF/WAVE header for mono audio of `data_len` bytes."""
    bps = BYTES_PER_SAMPLE[encoding]
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_len,
        b"WAVE",
        b"fmt ",
        16,
        WAV_FORMAT_TAG[encoding],
        1,
        sample_rate,
        sample_rate * bps,
        bps,
        bps * 8,
        b"data",
        data_len,
    )
