"""What a simulated call sounded like: both sides as a stereo WAV, and voice-to-voice latency
per turn measured at the caller (end of the caller's line -> first agent audio back)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from shared.codecs import ulaw_to_pcm16
from sim.twilio_call_model import CallResult

SAMPLE_RATE = 8000


def stereo_pcm(caller: bytes, agent: bytes) -> bytes:
    """Two µ-law tracks -> interleaved 16-bit stereo (caller left, agent right), the shorter
    one padded with silence."""
    n = max(len(caller), len(agent))
    left = np.zeros(n, dtype=np.int16)
    right = np.zeros(n, dtype=np.int16)
    left[: len(caller)] = ulaw_to_pcm16(caller)
    right[: len(agent)] = ulaw_to_pcm16(agent)
    return np.column_stack([left, right]).astype("<i2").tobytes()


def write_stereo_wav(path: Path, result: CallResult) -> float:
    """Save the call (caller left, agent right, 8 kHz) and return its length in seconds."""
    pcm = stereo_pcm(result.caller_track, result.agent_track)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm)
    return len(pcm) / 4 / SAMPLE_RATE


def voice_to_voice_ms(result: CallResult) -> list[tuple[str, float | None]]:
    """(caller line, ms from its last audio frame to the agent's next audio) per spoken line;
    None when the agent never answered it."""
    out: list[tuple[str, float | None]] = []
    pending: tuple[str, float] | None = None
    for event in result.events:
        if event.kind == "said":
            if pending is not None:
                out.append((pending[0], None))
            pending = (str(event.data.get("text", "")), event.t_ms)
        elif event.kind == "agent-audio-start" and pending is not None:
            out.append((pending[0], event.t_ms - pending[1]))
            pending = None
    if pending is not None:
        out.append((pending[0], None))
    return out
