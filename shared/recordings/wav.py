"""µ-law stereo WAV (caller left, agent right, 8 kHz): header, interleaving, parsing. Pure.

G.711 µ-law is what the line carries, so recording it costs no transcoding and 16 kB/s; the
WAV container (format tag 7, WAVE_FORMAT_MULAW) plays in browsers. Python's `wave` module reads
only PCM, so `parse` here reads the container and `to_pcm16_wav` re-encodes for tools that
want PCM.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shared.codecs import ULAW_SILENCE, ULAW_TO_PCM16

RATE = 8000
CHANNELS = 2
FRAME_BYTES = CHANNELS  # one µ-law byte per channel per sample
WAVE_FORMAT_MULAW = 7
WAVE_FORMAT_PCM = 1
HEADER_BYTES = 58  # RIFF(12) + fmt(8+18) + fact(8+4) + data(8)


class WavError(ValueError):
    """Not a recording this module wrote (or reads)."""


def header(frames: int) -> bytes:
    """The 58-byte header of a µ-law stereo WAV holding `frames` sample frames."""
    data_len = frames * FRAME_BYTES
    fmt = struct.pack(
        "<HHIIHHH",
        WAVE_FORMAT_MULAW,
        CHANNELS,
        RATE,
        RATE * FRAME_BYTES,
        FRAME_BYTES,
        8,
        0,  # cbSize: non-PCM formats carry it
    )
    return b"".join(
        (
            b"RIFF",
            struct.pack("<I", HEADER_BYTES - 8 + data_len),
            b"WAVE",
            b"fmt ",
            struct.pack("<I", len(fmt)),
            fmt,
            b"fact",
            struct.pack("<II", 4, frames),
            b"data",
            struct.pack("<I", data_len),
        )
    )


def interleave(left: bytes | bytearray, right: bytes | bytearray) -> bytes:
    """Two µ-law channels of equal length -> L R L R ... frames."""
    if len(left) != len(right):
        raise ValueError("channels differ in length")
    out = np.empty(2 * len(left), dtype=np.uint8)
    out[0::2] = np.frombuffer(bytes(left), dtype=np.uint8)
    out[1::2] = np.frombuffer(bytes(right), dtype=np.uint8)
    return out.tobytes()


def silence(frames: int) -> bytes:
    """`frames` stereo frames of µ-law silence."""
    return bytes([ULAW_SILENCE]) * (frames * FRAME_BYTES)


@dataclass(frozen=True)
class Parsed:
    """A µ-law stereo WAV, decoded to int16 per channel."""

    rate: int
    caller: npt.NDArray[np.int16]
    agent: npt.NDArray[np.int16]

    @property
    def duration_s(self) -> float:
        return len(self.caller) / self.rate


def parse(data: bytes) -> Parsed:
    """Read a µ-law stereo WAV (any chunk order; unknown chunks skipped)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    pos, fmt, body = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        chunk = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack_from("<HHIIHH", chunk)
        elif cid == b"data":
            body = chunk
        pos += 8 + size + (size & 1)
    if fmt is None or body is None:
        raise WavError("missing fmt or data chunk")
    tag, channels, rate = fmt[0], fmt[1], fmt[2]
    if tag != WAVE_FORMAT_MULAW or channels != CHANNELS:
        raise WavError(f"format {tag} with {channels} channels: expected µ-law stereo")
    frames = np.frombuffer(body[: len(body) - len(body) % 2], dtype=np.uint8)
    return Parsed(rate, ULAW_TO_PCM16[frames[0::2]], ULAW_TO_PCM16[frames[1::2]])


def to_pcm16_wav(data: bytes) -> bytes:
    """The same recording as 16-bit PCM stereo WAV (what stdlib `wave` and every player read)."""
    parsed = parse(data)
    pcm = np.empty(2 * len(parsed.caller), dtype="<i2")
    pcm[0::2], pcm[1::2] = parsed.caller, parsed.agent
    body = pcm.tobytes()
    fmt = struct.pack("<HHIIHH", WAVE_FORMAT_PCM, CHANNELS, parsed.rate, parsed.rate * 4, 4, 16)
    return b"".join(
        (
            b"RIFF",
            struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(body)),
            b"WAVE",
            b"fmt ",
            struct.pack("<I", len(fmt)),
            fmt,
            b"data",
            struct.pack("<I", len(body)),
            body,
        )
    )


def join_chunks(chunks: list[tuple[int, bytes]]) -> bytes:
    """Stereo frames from the call's frame 0 to the end of the last chunk: each chunk
    (start frame, interleaved frames) at its place, silence in the gaps (a stream that moved
    to another replica, a crash's lost seconds); a later chunk wins where two overlap."""
    end = max((start + len(data) // FRAME_BYTES for start, data in chunks), default=0)
    out = bytearray(silence(end))
    for start, data in sorted(chunks, key=lambda chunk: chunk[0]):
        usable = data[: len(data) - len(data) % FRAME_BYTES]
        out[start * FRAME_BYTES : start * FRAME_BYTES + len(usable)] = usable
    return bytes(out)
