"""Provider latency profiles: how slow the simulated STT, LLM and TTS are during a run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class LatencyProfile:
    """Delays the provider simulators add (what the platform does not control)."""

    name: str
    stt_final_ms: int  # STT: every message (so the final too) this long after its audio
    llm_first_token_ms: float  # LLM: request -> first streamed chunk
    llm_inter_chunk_ms: float  # LLM: between later chunks
    tts_first_byte_ms: int  # TTS: Flush -> first audio byte
    tts_realtime_factor: float  # TTS makes audio this many times faster than real time; 0=instant

    def sim_args(self) -> list[str]:
        """Command-line flags of `python -m sim` for this profile."""
        return [
            "--stt-latency-ms",
            str(self.stt_final_ms),
            "--llm-first-token-ms",
            str(self.llm_first_token_ms),
            "--llm-inter-chunk-ms",
            str(self.llm_inter_chunk_ms),
            "--tts-first-byte-ms",
            str(self.tts_first_byte_ms),
            "--tts-realtime-factor",
            str(self.tts_realtime_factor),
        ]

    def provider_sum_ms(self, endpointing_ms: int) -> float:
        """What a caller waits if nothing overlaps: endpointing silence, then the final
        transcript's delay, the LLM's first token and the TTS first byte, one after another."""
        return endpointing_ms + self.stt_final_ms + self.llm_first_token_ms + self.tts_first_byte_ms

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, LatencyProfile] = {
    # Providers answer at once: whatever latency is left is FrontDesk's own.
    "zero": LatencyProfile("zero", 0, 0.0, 0.0, 0, 0.0),
    # Typical hosted providers (Deepgram nova/aura, a fast hosted LLM).
    "realistic": LatencyProfile("realistic", 200, 300.0, 20.0, 100, 10.0),
    # A slow day: heavier LLM, slower TTS start.
    "slow": LatencyProfile("slow", 300, 800.0, 40.0, 250, 4.0),
}


def profile_named(name: str) -> LatencyProfile:
    """The profile called `name`, or ValueError listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None
