"""`python -m services.speech.tts.speed`: what the Piper voice costs on this machine.

For each sentence: CPU (and wall) time until its first 20 ms µ-law frame exists (phonemes +
the first phrase rendered + encoded), and CPU per second of speech and per character of text
for the whole sentence (media meters TTS in characters: `LOCAL_TTS_CPU_PER_CHARACTER` in
shared/tenancy/pricing.py is derived from the last figure).
CPU time is per thread of this process, so a loaded machine inflates wall time, not CPU.
"""

from __future__ import annotations

import statistics
import sys
import time

from services.speech.tts.aura_protocol import AudioFormat
from services.speech.tts.piper_engine import load_engine
from services.speech.tts.telephony_audio import encode

SENTENCES = (
    "Thanks for calling Dave's Barbershop, how can I help?",
    "A men's haircut is twenty five pounds and takes thirty minutes.",
    "We're at one twenty three High Street, next to the bakery.",
    "I can book you in with Maria on Tuesday at three in the afternoon.",
    "Could I take your name and a phone number, please?",
    "Your appointment is confirmed, see you then.",
    "Sure.",
    "Is there anything else I can help you with today?",
)
ULAW = AudioFormat(model="piper", encoding="mulaw", sample_rate=8000)


def main() -> int:
    t_cpu, t_wall = time.process_time(), time.perf_counter()
    engine = load_engine(onnx_threads=1, max_phrase_phonemes=60)
    print(f"load: {time.process_time() - t_cpu:.2f} s CPU, {time.perf_counter() - t_wall:.2f} s")
    engine.render(engine.phrases("Warm up.")[0])
    first_cpu: list[float] = []
    first_wall: list[float] = []
    per_second: list[float] = []
    total_cpu = 0.0
    total_chars = 0
    print(f"{'sentence':<52} {'first frame CPU':>15} {'wall':>6} {'audio':>6} {'CPU/s':>6}")
    for text in SENTENCES:
        c0, w0 = time.process_time(), time.perf_counter()
        phrases = engine.phrases(text)
        audio_bytes = len(encode(engine.render(phrases[0]), engine.sample_rate, ULAW))
        first_cpu.append(time.process_time() - c0)
        first_wall.append(time.perf_counter() - w0)
        for phrase in phrases[1:]:
            audio_bytes += len(encode(engine.render(phrase), engine.sample_rate, ULAW))
        seconds = audio_bytes / 8000
        per_second.append((time.process_time() - c0) / seconds)
        total_cpu += time.process_time() - c0
        total_chars += len(text)
        print(
            f"{text[:52]:<52} {first_cpu[-1]:>13.3f} s {first_wall[-1]:>5.2f}s "
            f"{seconds:>5.2f}s {per_second[-1]:>6.3f}"
        )
    print(
        f"first frame: median {statistics.median(first_cpu):.3f} s CPU, max "
        f"{max(first_cpu):.3f} s; wall median {statistics.median(first_wall):.3f} s. "
        f"CPU per second of speech: median {statistics.median(per_second):.3f}"
    )
    print(
        f"CPU per character of text: {total_cpu / total_chars * 1000:.2f} ms "
        f"({total_cpu:.2f} s CPU for {total_chars} characters)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
