"""`python -m services.speech.stt.speed [N]`: what recognition costs on this machine.

Decodes the test utterance (tests/assets/speech/book_table.ulaw, 4.9 s of espeak-ng speech)
N times (default 5) as the service does (`_decode`, greedy, one CTranslate2 thread), and runs
the Silero VAD over it. CPU time is this process's (`time.process_time`), so a loaded machine
inflates wall time, not CPU.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from services.speech.stt.recognizer import _decode, load_whisper
from shared.codecs import ulaw_to_pcm16
from shared.runtime.settings import Settings
from shared.speech.vad import SileroVad, VadOptions, load_vad_model

ASSET = Path(__file__).resolve().parents[3] / "tests" / "assets" / "speech" / "book_table.ulaw"


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    ulaw = ASSET.read_bytes()
    audio_s = len(ulaw) / 8000
    t_cpu, t_wall = time.process_time(), time.perf_counter()
    model = load_whisper(Settings(speech_decode_workers=1))
    print(f"load: {time.process_time() - t_cpu:.2f} s CPU, {time.perf_counter() - t_wall:.2f} s")
    pcm = ulaw_to_pcm16(ulaw)
    _decode(model, pcm, None, 1)  # warm-up
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(runs):
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        heard = _decode(model, pcm, None, 1)
        cpu.append(time.process_time() - t_cpu)
        wall.append(time.perf_counter() - t_wall)
    print(f"utterance: {audio_s:.2f} s of speech; heard: {heard.text!r}")
    print(
        f"decode: {statistics.mean(cpu):.3f} s CPU (min {min(cpu):.3f}), "
        f"{statistics.mean(wall):.3f} s wall (min {min(wall):.3f}), {runs} runs"
    )
    vad = SileroVad(load_vad_model(), VadOptions())
    t_cpu = time.process_time()
    for at in range(0, len(ulaw), 160):
        vad.feed(ulaw[at : at + 160])
    vad_cpu = time.process_time() - t_cpu
    print(f"VAD: {vad_cpu / audio_s * 1000:.1f} ms CPU per second of speech")
    return 0


if __name__ == "__main__":
    sys.exit(main())
