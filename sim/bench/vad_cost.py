"""CPU of the Silero VAD per 20 ms frame, with and without its energy gate.

    uv run python -m sim.bench.vad_cost

Two minutes of audio fed frame by frame: 60 s of -65 dBFS line hiss (the caller silent while
the agent talks, the common case) and speech-like voice.
"""

from __future__ import annotations

import time

import numpy as np

from shared.speech.vad import SileroVad, VadOptions, load_vad_model
from sim.speech_audio import speech_like, to_ulaw


def main() -> None:
    model = load_vad_model()
    hiss = to_ulaw(np.random.default_rng(1).normal(0, 10 ** (-65 / 20), 8000 * 60))
    voice, _ = speech_like(200, seed=1)
    for name, data in (
        ("caller silent (-65 dBFS hiss)", hiss),
        ("speech-like voice", to_ulaw(voice[: 8000 * 60])),
    ):
        frames = [data[i : i + 160] for i in range(0, len(data), 160)]
        for floor in (None, VadOptions().energy_floor_dbfs):
            vad = SileroVad(model, VadOptions(energy_floor_dbfs=floor))
            started = time.process_time()
            for frame in frames:
                vad.feed(frame)
            spent = time.process_time() - started
            print(
                f"{name}, {len(frames) * 20 / 1000:.0f} s, energy floor {floor}: "
                f"{spent / len(frames) * 1e6:.1f} us CPU per frame, {vad.inferences} inferences"
            )


if __name__ == "__main__":
    main()
