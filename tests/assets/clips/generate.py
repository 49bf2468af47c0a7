"""Build the labelled barge-in clip set: 8 kHz µ-law files + labels.json, all deterministic.

Run from the repository root (needs espeak-ng and sox from Debian; nothing else):

    uv run python tests/assets/clips/generate.py

Every clip is what the caller's line carries while the agent talks: a bed of the agent's own
voice coming back as echo (an espeak-ng sentence 28 dB down, 60 ms late, band-limited like a
phone line) plus low line noise, and on top of it, starting at `onset_ms`, one event:

- `backchannel`: spoken "mhm", "okay", "yes", "yeah", "uh huh", "right" (must not interrupt);
- `cough`: one or two bursts of shaped noise with a voiced rasp (numpy; must not interrupt);
- `noise`: a door knock, a clatter, a noise swell (numpy; must not interrupt);
- `tv`: a sentence from a TV in the room: speech mixed low (-24 dB) with hiss and reverb
  (must not interrupt);
- `echo`: nothing but the agent's echo (must not interrupt);
- `interrupt`: a real interruption ("no wait", "actually I need Tuesday", ...) (must interrupt).

The speech is espeak-ng with three voices and two rates. `labels.json` lists for every clip its
file, label, whether it must interrupt, the words said and their approximate audio span
(`onset_ms`..`end_ms`, from the event's own samples) and word end times (spread over the span
in proportion to letters), which the bench feeds to its scripted STT as Deepgram would.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from shared.codecs import pcm16_to_ulaw

SR = 8000
HERE = Path(__file__).parent
Signal = npt.NDArray[np.float64]

VOICES = [("en-us", 165), ("en-gb", 150), ("en-us+f3", 180)]
AGENT_LINES = [
    "We have openings on Monday at nine and Wednesday afternoon, which would suit you better?",
    "Your appointment is booked, and you will get a text message with the details shortly.",
    "Let me check the calendar for that day, it will only take a moment.",
]
BACKCHANNELS = ["mhm", "okay", "yes", "yeah", "uh huh", "right"]
INTERRUPTS = [
    "no wait",
    "actually I need Tuesday",
    "hold on a second",
    "sorry, that's wrong",
    "stop, I want to cancel",
    "can I change the time",
]
TV_LINES = [
    "And in tonight's news, the city council voted to expand the park.",
    "Stay tuned for the weather, after these messages.",
]
ONSET_MS = 600
CLIP_MS = 2200


def espeak(text: str, voice: str, rate: int) -> Signal:
    """`text` spoken by espeak-ng, resampled to 8 kHz by sox, as floats in [-1, 1]."""
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "8k.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(raw), text], check=True
        )
        subprocess.run(
            ["sox", str(raw), "-r", str(SR), "-c", "1", "-b", "16", str(out), "sinc", "300-3400"],
            check=True,
        )
        with wave.open(str(out)) as w:
            data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return trim(data.astype(np.float64) / 32768.0)


def trim(x: Signal, floor: float = 0.01) -> Signal:
    """Drop leading and trailing near-silence."""
    loud = np.flatnonzero(np.abs(x) > floor)
    return x[loud[0] : loud[-1] + 1] if loud.size else x


def at_level(x: Signal, dbfs: float) -> Signal:
    """`x` scaled so that its RMS over the loud part is `dbfs`."""
    loud = x[np.abs(x) > 0.02 * np.abs(x).max()]
    rms = float(np.sqrt(np.mean(loud**2))) if loud.size else 1.0
    return x * (10 ** (dbfs / 20) / rms)


def reverb(x: Signal, rng: np.random.Generator, rt60_s: float = 0.7) -> Signal:
    """A room: convolve with exponentially decaying noise."""
    n = int(rt60_s * SR)
    ir = rng.normal(0, 1, n) * np.exp(-6.9 * np.arange(n) / n)
    ir[0] = 4.0
    return np.convolve(x, ir / np.abs(ir).sum() * 4)[: x.size + n]


def bandpass(x: Signal, lo: float, hi: float) -> Signal:
    """Crude FFT band-pass."""
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(x.size, 1 / SR)
    spec[(freqs < lo) | (freqs > hi)] = 0
    return np.fft.irfft(spec, x.size)


def cough(rng: np.random.Generator, bursts: int) -> Signal:
    """One or two coughs: a sharp broadband burst decaying over ~200 ms with a low rasp."""
    parts = []
    for _ in range(bursts):
        n = int(rng.uniform(0.18, 0.28) * SR)
        t = np.arange(n) / SR
        env = (1 - np.exp(-t / 0.004)) * np.exp(-t / rng.uniform(0.05, 0.09))
        noise = bandpass(rng.normal(0, 1, n), 200, 3500)
        rasp = np.sin(2 * np.pi * rng.uniform(90, 140) * t) * rng.normal(1, 0.5, n)
        parts += [(noise + 0.4 * rasp) * env, np.zeros(int(rng.uniform(0.08, 0.15) * SR))]
    return np.concatenate(parts)


def knock(rng: np.random.Generator) -> Signal:
    """Three knocks on a door: short resonant thumps."""
    out = []
    for _ in range(3):
        n = int(0.06 * SR)
        t = np.arange(n) / SR
        f = rng.uniform(120, 220)
        out += [np.sin(2 * np.pi * f * t) * np.exp(-t / 0.015), np.zeros(int(0.15 * SR))]
    return np.concatenate(out)


def clatter(rng: np.random.Generator) -> Signal:
    """Dishes: a dozen clicks of high-passed noise."""
    n = int(0.6 * SR)
    out = np.zeros(n)
    for at in rng.integers(0, n - 200, 12):
        out[at : at + 200] += bandpass(rng.normal(0, 1, 200), 1500, 3800) * np.exp(
            -np.arange(200) / 40
        )
    return out


def swell(rng: np.random.Generator) -> Signal:
    """A passing vehicle: pink-ish noise rising and falling over a second."""
    n = SR
    white = rng.normal(0, 1, n)
    pink = np.cumsum(white) * 0.02
    pink -= np.convolve(pink, np.ones(400) / 400, mode="same")
    return bandpass(pink, 80, 2000) * np.hanning(n)


def echo_bed(line: str, voice: str, rng: np.random.Generator) -> Signal:
    """The agent's voice as it leaks back on the caller's line, plus line hiss."""
    agent = espeak(line, voice, 170)
    echo = np.zeros(CLIP_MS * SR // 1000)
    delay = int(0.06 * SR)
    take = agent[: echo.size - delay]
    echo[delay : delay + take.size] = at_level(take, -40)  # agent at -12 dBFS, ERL 28 dB
    return echo + rng.normal(0, 10 ** (-62 / 20), echo.size)


def words_spread(text: str, onset_ms: int, end_ms: int) -> list[dict[str, object]]:
    """Word end times spread over [onset_ms, end_ms] in proportion to their letters."""
    words = text.replace(",", "").split()
    total = sum(len(w) for w in words)
    out, done = [], 0
    for word in words:
        start = onset_ms + (end_ms - onset_ms) * done // total
        done += len(word)
        out.append(
            {
                "word": word,
                "start_ms": start,
                "end_ms": onset_ms + (end_ms - onset_ms) * done // total,
            }
        )
    return out


def build() -> list[dict[str, object]]:
    """Write every clip and return the labels."""
    rng = np.random.default_rng(17)
    events: list[tuple[str, str, bool, str, Signal]] = []
    for v, (voice, rate) in enumerate(VOICES):
        for speed in (rate, rate + 40):
            tag = f"{voice.replace('+', '_')}_{speed}"
            for word in BACKCHANNELS:
                sig = at_level(espeak(word, voice, speed), -18)
                events.append(
                    (f"backchannel_{word.replace(' ', '_')}_{tag}", "backchannel", False, word, sig)
                )
            for text in INTERRUPTS:
                sig = at_level(espeak(text, voice, speed), -18)
                name = "_".join(text.replace(",", "").replace("'", "").split()[:3])
                events.append((f"interrupt_{name}_{tag}", "interrupt", True, text, sig))
        for t, text in enumerate(TV_LINES):
            sig = reverb(at_level(espeak(text, voice, rate), -18), rng)
            sig = at_level(sig, -42) + rng.normal(0, 10 ** (-50 / 20), sig.size)
            events.append(
                (f"tv_{t}_{voice.replace('+', '_')}", "tv", False, "", sig[: SR * 3 // 2])
            )
        del v
    for i in range(6):
        events.append((f"cough_{i}", "cough", False, "", at_level(cough(rng, 1 + i % 2), -16)))
    for i, make in enumerate((knock, clatter, swell, knock, clatter, swell)):
        events.append((f"noise_{make.__name__}_{i}", "noise", False, "", at_level(make(rng), -22)))
    for i in range(3):
        events.append((f"echo_{i}", "echo", False, "", np.zeros(0)))

    labels = []
    for n, (name, label, must, text, sig) in enumerate(events):
        voice = VOICES[n % len(VOICES)][0]
        clip = echo_bed(AGENT_LINES[n % len(AGENT_LINES)], voice, rng)
        onset = ONSET_MS * SR // 1000
        sig = sig[: clip.size - onset]
        clip[onset : onset + sig.size] += sig
        pcm = np.clip(clip * 32768, -32768, 32767).astype(np.int16)
        (HERE / f"{name}.ulaw").write_bytes(pcm16_to_ulaw(pcm))
        loud = np.flatnonzero(np.abs(sig) > 0.02 * (np.abs(sig).max() if sig.size else 1))
        start_ms = ONSET_MS + (int(loud[0]) * 1000 // SR if loud.size else 0)
        end_ms = ONSET_MS + (int(loud[-1]) * 1000 // SR if loud.size else 0)
        labels.append(
            {
                "file": f"{name}.ulaw",
                "label": label,
                "interrupt": must,
                "text": text,
                "onset_ms": start_ms,
                "end_ms": end_ms,
                "words": words_spread(text, start_ms, end_ms) if text else [],
            }
        )
    return labels


def main() -> None:
    for old in HERE.glob("*.ulaw"):
        old.unlink()
    labels = build()
    (HERE / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    counts: dict[str, int] = {}
    for item in labels:
        counts[str(item["label"])] = counts.get(str(item["label"]), 0) + 1
    print(f"{len(labels)} clips: {counts}")


if __name__ == "__main__":
    main()
