"""`frontdesk bench-barge-in`: the barge-in policy on the labelled clip set (tests/assets/clips).

Each clip is the caller's line while the agent talks (see tests/assets/clips/generate.py). It is
replayed 20 ms frame by frame through the media's own listening code (`OverTalk`: Silero VAD,
the speech gate, the barge-in detector) with the agent speaking from frame 0, and a scripted
STT that behaves like the Deepgram simulator: interim results every 200 ms of audio from the
speech onset with the words that have ended, a final with `speech_final` 300 ms after the last
word, each delivered `stt_latency_ms` of audio time after the audio it covers. Everything is in
the clip's own timeline (frame indices), so the figures do not depend on the machine.

Per policy it reports: false interrupts (an `Interrupt` on a clip that must not interrupt, and
how many of those were undone by a `FalseInterrupt`), missed interrupts (no `Interrupt` on a
clip that must), and the reaction (trigger audio time minus the labelled onset) on the real
interruptions.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from services.media.caller.backlog import FRAME_MS
from services.media.caller.barge_in import (
    BargeInDetector,
    BargeInOptions,
    Decision,
    FalseInterrupt,
    Interrupt,
)
from services.media.caller.end_of_turn import open_reason
from services.media.caller.over_talk import OverTalk
from services.media.caller.speech_gate import SpeechGate
from shared.speech.vad import SileroVad, VadModel, load_vad_model

CLIPS_DIR = Path(__file__).resolve().parent.parent / "tests" / "assets" / "clips"
FRAME_BYTES = 160
INTERIM_EVERY_MS = 200
ENDPOINTING_MS = 300
TRAIL_MS = 2000  # caller audio (line hiss) played after the clip so late decisions are seen


@dataclass(frozen=True)
class Clip:
    """One labelled clip."""

    name: str
    label: str
    must_interrupt: bool
    onset_ms: int
    end_ms: int
    words: tuple[tuple[str, int], ...]  # (word, end ms)
    audio: bytes


@dataclass
class Replay:
    """What the policy did on one clip, in the clip's audio time."""

    clip: Clip
    decisions: list[tuple[int, Decision]] = field(default_factory=list)  # (frame index, d)

    @property
    def interrupt(self) -> tuple[int, Interrupt] | None:
        """The first interrupt and the frame whose arrival produced it."""
        return next(((i, d) for i, d in self.decisions if isinstance(d, Interrupt)), None)

    @property
    def undone(self) -> bool:
        """The interrupt was later judged false."""
        return any(isinstance(d, FalseInterrupt) for _, d in self.decisions)

    @property
    def paused_ms(self) -> int | None:
        """An undone interrupt: audio time from the stop to the verdict (the agent then goes
        on from where it was cut), the gap the caller hears."""
        verdict = next((d for _, d in self.decisions if isinstance(d, FalseInterrupt)), None)
        return None if verdict is None else verdict.decided_audio_ms - verdict.trigger_audio_ms


def load_clips(directory: Path = CLIPS_DIR) -> list[Clip]:
    """The clip set and its labels."""
    labels = json.loads((directory / "labels.json").read_text())
    return [
        Clip(
            name=item["file"].removesuffix(".ulaw"),
            label=item["label"],
            must_interrupt=item["interrupt"],
            onset_ms=item["onset_ms"],
            end_ms=item["end_ms"],
            words=tuple((w["word"], w["end_ms"]) for w in item["words"]),
            audio=(directory / item["file"]).read_bytes(),
        )
        for item in labels
    ]


def stt_script(clip: Clip, latency_ms: int) -> list[tuple[int, str, bool]]:
    """(arrival audio ms, text, is_final) of the scripted STT results for `clip`."""
    if not clip.words:
        return []
    out: list[tuple[int, str, bool]] = []
    t = clip.onset_ms + INTERIM_EVERY_MS
    while t < clip.end_ms:
        heard = [w for w, end in clip.words if end <= t]
        if heard:
            out.append((t + latency_ms, " ".join(heard), False))
        t += INTERIM_EVERY_MS
    text = " ".join(w for w, _ in clip.words)
    out.append((clip.end_ms + ENDPOINTING_MS + latency_ms, text, True))
    return out


def replay(
    clip: Clip,
    model: VadModel,
    options: BargeInOptions,
    stt_latency_ms: int = 200,
    gated: bool = True,
) -> Replay:
    """Run `clip` through the listening code with the agent talking throughout (`gated`: with
    the speech gate, as media runs now; without it, as media ran before issue 17)."""
    detector = BargeInDetector(options)
    listener = OverTalk(detector, SileroVad(model), SpeechGate() if gated else None)
    script = stt_script(clip, stt_latency_ms)
    result = Replay(clip)
    hiss = clip.audio[-FRAME_BYTES:]
    audio = clip.audio + hiss * (TRAIL_MS // FRAME_MS)
    agent_speaking = True
    for index in range(len(audio) // FRAME_BYTES):
        now_ms = (index + 1) * FRAME_MS
        frame = audio[index * FRAME_BYTES : (index + 1) * FRAME_BYTES]
        decisions = listener.frame(frame, index, agent_speaking)
        while script and script[0][0] <= now_ms:
            _, text, final = script.pop(0)
            decision = detector.transcript(text, now_ms, is_final=final)
            decisions += [decision] if decision is not None else []
            if final:
                ended = detector.utterance_ended(now_ms)
                decisions += [ended] if ended is not None else []
        for decision in decisions:
            result.decisions.append((index, decision))
            if isinstance(decision, Interrupt):
                agent_speaking = False  # media cleared Twilio's buffer
    return result


def summarize(replays: list[Replay], bound_ms: int = 250) -> dict[str, object]:
    """Rates and reaction times over `replays`."""
    must = [r for r in replays if r.clip.must_interrupt]
    must_not = [r for r in replays if not r.clip.must_interrupt]
    false = [r for r in must_not if r.interrupt is not None]
    reactions = [
        hit[1].trigger_audio_ms - r.clip.onset_ms for r in must if (hit := r.interrupt) is not None
    ]
    pauses = [p for r in false if (p := r.paused_ms) is not None]
    by_label: dict[str, str] = {}
    for label in sorted({r.clip.label for r in must_not}):
        group = [r for r in must_not if r.clip.label == label]
        hits = sum(r.interrupt is not None for r in group)
        by_label[label] = f"{hits}/{len(group)}"
    return {
        "false_interrupts": f"{len(false)}/{len(must_not)}",
        "false_interrupt_rate": round(len(false) / max(len(must_not), 1), 3),
        "false_undone": f"{sum(r.undone for r in false)}/{len(false)}",
        "false_stood": f"{sum(not r.undone for r in false)}/{len(must_not)}",
        "undone_pause_ms_p50": statistics.median(pauses) if pauses else None,
        "false_by_label": by_label,
        "missed_interrupts": f"{len(must) - len(reactions)}/{len(must)}",
        "missed_interrupt_rate": round((len(must) - len(reactions)) / max(len(must), 1), 3),
        "reaction_ms_p50": statistics.median(reactions) if reactions else None,
        "reaction_ms_max": max(reactions) if reactions else None,
        f"within_{bound_ms}_ms": f"{sum(x <= bound_ms for x in reactions)}/{len(must)}",
    }


POLICIES = {
    "before: 2 words or 600 ms of VAD voice": (BargeInOptions(onset_windows=0), False),
    "gate only: + voice over echo, no onset rule": (BargeInOptions(onset_windows=0), True),
    "after: + own-voice onset (3 windows)": (BargeInOptions(), True),
}
DEFAULT_POLICY = "after: + own-voice onset (3 windows)"
"""The policy media runs by default (its figures go into `frontdesk bench` reports)."""


def run(stt_latency_ms: int = 200) -> dict[str, dict[str, object]]:
    """Every policy on every clip; also the CPU per frame of the listening code."""
    model = load_vad_model()
    clips = load_clips()
    report: dict[str, dict[str, object]] = {}
    for name, (options, gated) in POLICIES.items():
        started = time.process_time()
        replays = [replay(clip, model, options, stt_latency_ms, gated) for clip in clips]
        cpu = time.process_time() - started
        frames = sum(len(c.audio) // FRAME_BYTES + TRAIL_MS // FRAME_MS for c in clips)
        summary = summarize(replays)
        summary["cpu_us_per_frame"] = round(cpu / frames * 1e6, 1)
        report[name] = summary
    return report


def end_of_turn_cpu_us(rounds: int = 2000) -> float:
    """CPU per end-of-turn decision (`open_reason`) over the clip texts and a few open ones."""
    texts = [" ".join(w for w, _ in c.words) for c in load_clips() if c.words]
    texts += ["My number is 07700", "I'd like to book a table for", "It's for my wife,"]
    started = time.process_time()
    for _ in range(rounds):
        for text in texts:
            open_reason(text)
    return (time.process_time() - started) / (rounds * len(texts)) * 1e6


def gate_cpu_us_per_frame(rounds: int = 3) -> float:
    """CPU of the speech gate alone per 20 ms frame, over every clip (the best of `rounds`)."""
    clips = load_clips()
    frames = sum(len(c.audio) // FRAME_BYTES for c in clips)
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for clip in clips:
            gate = SpeechGate()
            for at in range(0, len(clip.audio) - FRAME_BYTES + 1, FRAME_BYTES):
                gate.feed(clip.audio[at : at + FRAME_BYTES])
        best = min(best, time.process_time() - started)
    return best / frames * 1e6


def command(stt_latency_ms: int, out: Path | None) -> None:
    """`frontdesk bench-turns`: print (and write to `out`) the figures."""
    report: dict[str, object] = dict(run(stt_latency_ms))
    report["end_of_turn_cpu_us_per_decision"] = round(end_of_turn_cpu_us(), 2)
    report["speech_gate_cpu_us_per_frame"] = round(gate_cpu_us_per_frame(), 1)
    text = json.dumps(report, indent=1)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
