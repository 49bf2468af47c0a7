"""Smart-Turn v3.2 (Pipecat's audio end-of-turn model) on this machine: CPU per decision, and
its verdicts on espeak-ng speech of finished and unfinished utterances, through 8 kHz µ-law.

Not a project dependency: the model ships inside the pipecat-ai wheel (BSD-2-Clause), which
this script reads straight from a downloaded wheel file. Run from the repository root:

    pip download --no-deps pipecat-ai==1.14.0 -d /tmp/pc
    uv run python bench/smart_turn_cpu.py /tmp/pc/pipecat_ai-1.14.0-py3-none-any.whl

Needs espeak-ng and sox (Debian) for the speech. Prints JSON.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import time
import wave
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import onnxruntime as ort

from shared.codecs import pcm16_to_ulaw, ulaw_to_pcm16

MODEL = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
FEATURES = "pipecat/audio/turn/smart_turn/_whisper_features.py"
FINISHED = [
    "Hi, how much is a haircut?",
    "I'd like to book a table for four tomorrow at seven.",
    "That works for me.",
    "No thanks, that's all.",
    "What time do you close on Saturday?",
    "Can I come in on Tuesday?",
]
UNFINISHED = [
    "My number is",
    "I'd like to book a table for",
    "I need a haircut and",
    "Can I book the",
    "It's for my wife, um",
    "I want to change it to",
]


def speech_16k(text: str, tmp: Path) -> np.ndarray:
    """espeak-ng -> 8 kHz µ-law (the phone line) -> 16 kHz float, as Pipecat would feed it."""
    raw, line, up = tmp / "raw.wav", tmp / "8k.wav", tmp / "16k.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(line)], check=True)
    with wave.open(str(line)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    line.write_bytes(b"")
    telephone = ulaw_to_pcm16(pcm16_to_ulaw(pcm))
    with wave.open(str(line), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(telephone.tobytes())
    subprocess.run(["sox", str(line), "-r", "16000", str(up)], check=True)
    with wave.open(str(up)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    audio = data.astype(np.float32) / 32768.0
    silence = np.zeros(16000 * 2 // 10, dtype=np.float32)  # 200 ms after the words
    out = np.concatenate((audio, silence))[-16000 * 8 :]
    return np.pad(out, (16000 * 8 - out.size, 0))


def main(wheel: Path) -> None:
    tmp = Path(tempfile.mkdtemp())
    with zipfile.ZipFile(wheel) as zf:
        zf.extract(MODEL, tmp)
        zf.extract(FEATURES, tmp)
    spec = importlib.util.spec_from_file_location("whisper_features", tmp / FEATURES)
    assert spec is not None and spec.loader is not None
    features: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(features)
    opts = ort.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(tmp / MODEL), sess_options=opts)

    def decide(audio: np.ndarray) -> tuple[float, float, float]:
        t0 = time.process_time()
        mel = features.compute_whisper_log_mel_features(audio, do_normalize=True)
        t1 = time.process_time()
        prob = float(session.run(None, {"input_features": mel[None]})[0][0].item())
        return prob, (t1 - t0) * 1000, (time.process_time() - t1) * 1000

    decide(np.zeros(16000 * 8, dtype=np.float32))  # warm-up
    rows = []
    for label, texts in (("finished", FINISHED), ("unfinished", UNFINISHED)):
        for text in texts:
            prob, feat_ms, model_ms = decide(speech_16k(text, tmp))
            rows.append(
                {
                    "text": text,
                    "label": label,
                    "p_complete": round(prob, 3),
                    "features_cpu_ms": round(feat_ms, 1),
                    "model_cpu_ms": round(model_ms, 1),
                }
            )
    right = sum((r["p_complete"] > 0.5) == (r["label"] == "finished") for r in rows)
    cpu = sorted(float(r["features_cpu_ms"]) + float(r["model_cpu_ms"]) for r in rows)
    summary = {
        "decisions": len(rows),
        "right": right,
        "cpu_ms_per_decision_median": cpu[len(cpu) // 2],
        "cpu_ms_per_decision_max": cpu[-1],
        "rows": rows,
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
