"""ElevenLabs TTS simulator: options, output formats, audio pacing and what it records.

Audio-length rule (what tests assert on): every generated piece of text is stripped of
surrounding whitespace and becomes exactly `audio_bytes_for_text(piece.strip(), ms_per_char,
rate, bytes_per_sample)` bytes of deterministic tone audio (sim/deepgram_tts_audio.py).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from sim.deepgram_tts_audio import synthesize

ALL_OUTPUT_FORMATS = (
    "mp3_22050_32",
    "mp3_44100_32",
    "mp3_44100_64",
    "mp3_44100_96",
    "mp3_44100_128",
    "mp3_44100_192",
    "pcm_8000",
    "pcm_16000",
    "pcm_22050",
    "pcm_24000",
    "pcm_44100",
    "ulaw_8000",
    "alaw_8000",
    "opus_48000_32",
    "opus_48000_64",
    "opus_48000_96",
    "opus_48000_128",
    "opus_48000_192",
)
DEFAULT_OUTPUT_FORMAT = "mp3_44100_128"
NO_WEBSOCKET_MODELS = ("eleven_v3",)
CONTENT_TYPE = {"mulaw": "audio/basic", "alaw": "audio/x-alaw-basic", "linear16": "audio/pcm"}


class ElevenLabsTtsSimOptions(BaseModel):
    """ElevenLabs TTS simulator settings."""

    api_key: str = Field("el-sim", description="API key accepted as xi-api-key.")
    ms_per_char: float = Field(60.0, ge=0, description="Audio length (ms) of one text character.")
    first_byte_latency_ms: int = Field(
        40, ge=0, description="Wall delay before the first audio byte of each generation."
    )
    chunk_bytes: int = Field(1600, gt=0, description="Audio bytes per WS message / REST chunk.")
    realtime_factor: float = Field(
        10.0, ge=0, description="Audio is made this many times faster than real time; 0=instant."
    )
    max_contexts: int = Field(5, gt=0, description="Concurrent contexts per multi-stream socket.")
    snake_case: bool = Field(
        False, description="Multi-context replies use context_id/is_final and send flush_done."
    )


class FormatError(ValueError):
    """An output_format the request may not use (-> 400 / handshake denial)."""


@dataclass(frozen=True)
class AudioFormat:
    """A raw output format the simulator can synthesize."""

    name: str
    encoding: str  # sim/deepgram_tts_audio.py name: mulaw | alaw | linear16
    sample_rate: int

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.encoding == "linear16" else 1

    @property
    def content_type(self) -> str:
        return CONTENT_TYPE[self.encoding]


def parse_output_format(raw: str | None) -> AudioFormat:
    """The simulated format for `output_format`; FormatError for invalid or mp3/opus."""
    name = raw or DEFAULT_OUTPUT_FORMAT
    if name not in ALL_OUTPUT_FORMATS:
        raise FormatError(f"Invalid output_format {name!r}")
    kind, _, rest = name.partition("_")
    if kind == "ulaw":
        return AudioFormat(name, "mulaw", 8000)
    if kind == "alaw":
        return AudioFormat(name, "alaw", 8000)
    if kind == "pcm":
        return AudioFormat(name, "linear16", int(rest))
    raise FormatError(f"output_format {name!r} is not simulated (use ulaw_8000, alaw_8000, pcm_*)")


def parse_flag(query: Mapping[str, str], name: str, default: bool) -> bool:
    """Booleans travel as 'true'/'false' strings."""
    raw = query.get(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise FormatError(f"Invalid value for {name}: {raw!r} (expected true or false)")


def alignment_for(text: str, start_ms: float, end_ms: float, ms_per_char: float) -> dict[str, Any]:
    """Characters whose audio starts inside [start_ms, end_ms), times relative to start_ms."""
    chars: list[str] = []
    starts: list[int] = []
    for i, char in enumerate(text):
        at = i * ms_per_char
        if start_ms <= at < end_ms:
            chars.append(char)
            starts.append(round(at - start_ms))
    return {
        "chars": chars,
        "charStartTimesMs": starts,
        "charDurationsMs": [round(ms_per_char)] * len(chars),
    }


@dataclass(frozen=True)
class AudioPiece:
    """One chunk of generated audio plus its alignment (times relative to the chunk)."""

    audio: bytes
    alignment: dict[str, Any]

    def b64(self) -> str:
        return base64.b64encode(self.audio).decode("ascii")


async def generate_audio(
    text: str, fmt: AudioFormat, options: ElevenLabsTtsSimOptions
) -> AsyncIterator[AudioPiece]:
    """Paced audio chunks for `text` (stripped), after the first-byte latency."""
    spoken = text.strip()
    if not spoken:
        return
    await asyncio.sleep(options.first_byte_latency_ms / 1000.0)
    audio = synthesize(spoken, options.ms_per_char, fmt.sample_rate, fmt.encoding)
    bytes_per_ms = fmt.sample_rate * fmt.bytes_per_sample / 1000.0
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for offset in range(0, len(audio), options.chunk_bytes):
        if options.realtime_factor > 0:
            due = t0 + offset / bytes_per_ms / 1000.0 / options.realtime_factor
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
        chunk = audio[offset : offset + options.chunk_bytes]
        start_ms = offset / bytes_per_ms
        end_ms = (offset + len(chunk)) / bytes_per_ms
        yield AudioPiece(chunk, alignment_for(spoken, start_ms, end_ms, options.ms_per_char))


@dataclass
class ContextRecord:
    """One synthesis context as the simulator saw it."""

    context_id: str
    generated_texts: list[str] = field(default_factory=list)
    audio_bytes: int = 0
    closed_by: str | None = None  # close_context | close_socket | eos | timeout | disconnect
    final_sent: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "context_id": self.context_id,
            "generated_texts": self.generated_texts,
            "audio_bytes": self.audio_bytes,
            "closed_by": self.closed_by,
            "final_sent": self.final_sent,
        }


@dataclass
class WsSession:
    """One accepted stream-input / multi-stream-input socket."""

    endpoint: str
    voice_id: str
    model_id: str | None
    output_format: str
    contexts: list[ContextRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    close_code: int | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "voice_id": self.voice_id,
            "model_id": self.model_id,
            "output_format": self.output_format,
            "contexts": [c.summary() for c in self.contexts],
            "errors": self.errors,
            "close_code": self.close_code,
        }
