"""Barge-in on the caller's own voice: the onset rule, false-interrupt verdicts, and the
labelled clip set replayed through the real Silero model, speech gate and detector, in the
clips' own timeline (frame indices, not wall time)."""

from __future__ import annotations

from functools import cache

import pytest

from frontdesk.barge_in_bench import Clip, Replay, load_clips, replay, summarize
from services.media.caller.backlog import FRAME_MS
from services.media.caller.barge_in import (
    BargeInDetector,
    BargeInOptions,
    FalseInterrupt,
    Interrupt,
    may_be_backchannels,
)
from services.media.caller.speech_gate import SpeechGate, voicing
from shared.speech.vad import VadModel, load_vad_model

BOUND_MS = 250
W = 32  # window ms


def talking() -> BargeInDetector:
    d = BargeInDetector(BargeInOptions())
    assert d.agent_speaking(True, 0) is None
    return d


def test_three_voice_windows_interrupt_before_any_word() -> None:
    d = talking()
    assert d.voice_window(1000, True, W) is None
    assert d.voice_window(1032, False, W) is None  # a consonant: the run goes on
    assert d.voice_window(1064, True, W) is None
    assert d.voice_window(1096, True, W) == Interrupt("onset", 1128)


def test_voice_windows_far_apart_do_not_add_up() -> None:
    d = talking()
    for start in (1000, 1300, 1600, 1900):  # knocks: one voiced window each, 300 ms apart
        assert d.voice_window(start, True, W) is None
        assert d.voice_window(start + W, False, W) is None
        assert d.voice_window(start + 2 * W, False, W) is None
        assert d.voice_window(start + 3 * W, False, W) is None


def test_backchannel_heard_before_the_onset_never_interrupts() -> None:
    d = talking()
    d.voice_started(1000)
    assert d.transcript("mhm", 1050, is_final=False) is None
    for k in range(10):
        assert d.voice_window(1000 + k * W, True, W) is None
    assert d.transcript("mhm", 1400, is_final=True) is None
    assert d.utterance_ended(1700) is None  # nothing was interrupted: nothing to undo


def test_onset_then_only_backchannels_is_a_false_interrupt() -> None:
    d = talking()
    for k in range(3):
        decision = d.voice_window(2000 + k * W, True, W)
    assert decision == Interrupt("onset", 2096)
    assert d.confirming
    assert d.agent_speaking(False, 2100) is None  # media cleared the agent
    assert d.transcript("uh", 2400, is_final=False) is None  # "uh" may become "uh huh"
    assert d.confirming
    assert d.transcript("uh huh", 2700, is_final=True) is None
    assert d.utterance_ended(2900) == FalseInterrupt(2096, 2900, ("uh", "huh"))
    assert not d.confirming


def test_onset_then_real_words_is_confirmed() -> None:
    d = talking()
    for k in range(3):
        d.voice_window(2000 + k * W, True, W)
    d.agent_speaking(False, 2100)
    assert d.transcript("no wait", 2500, is_final=False) is None
    assert not d.confirming
    assert d.utterance_ended(2900) is None


def test_onset_with_no_words_long_after_the_voice_is_a_false_interrupt() -> None:
    d = talking()
    for k in range(4):
        d.voice_window(3000 + k * W, True, W)  # a voiced cough
    d.agent_speaking(False, 3150)
    for start in range(3128, 3400, W):  # quiet windows end the voice run
        assert d.voice_window(start, False, W) is None
    assert d.advance(3160 + 1100) is None  # STT may still be on its way
    assert d.advance(3128 + 1200) == FalseInterrupt(3096, 4328, ())
    assert d.advance(6000) is None  # once


@pytest.mark.parametrize(
    ("words", "maybe"),
    [(("uh",), True), (("mhm", "uh"), True), (("uh", "huh"), True), (("no",), False)],
)
def test_backchannel_prefixes(words: tuple[str, ...], maybe: bool) -> None:
    assert may_be_backchannels(words, BargeInOptions().backchannels) is maybe


def test_gate_ignores_echo_level_and_takes_a_louder_voice() -> None:
    import numpy as np

    from shared.codecs import pcm16_to_ulaw

    t = np.arange(8000) / 8000
    echo = 0.01 * np.sin(2 * np.pi * 140 * t)  # -43 dBFS periodic: the agent's echo
    voice = 0.2 * np.sin(2 * np.pi * 140 * t)  # -17 dBFS: the caller
    audio = np.concatenate((echo, voice))
    gate = SpeechGate()
    windows = gate.feed(pcm16_to_ulaw((audio * 32767).astype(np.int16)))
    assert not any(w.voice for w in windows if w.audio_ms + W <= 1000)
    assert all(w.voice for w in windows if w.audio_ms >= 1000)
    rng = np.random.default_rng(1)
    assert voicing(rng.normal(0, 0.1, 256)) < 0.5 < voicing(voice[:256])


# ---- the labelled clip set ---------------------------------------------------------------
@cache
def model() -> VadModel:
    return load_vad_model()


@cache
def replays() -> tuple[Replay, ...]:
    return tuple(
        replay(clip, model(), BargeInOptions(), stt_latency_ms=200) for clip in load_clips()
    )


def of(label: str) -> list[Replay]:
    found = [r for r in replays() if r.clip.label == label]
    assert found, f"no {label} clips"
    return found


def frame_of(clip: Clip, audio_ms: int) -> int:
    return audio_ms // FRAME_MS


def test_clip_set_is_labelled() -> None:
    labels = {r.clip.label for r in replays()}
    assert labels == {"backchannel", "cough", "noise", "tv", "echo", "interrupt"}
    assert {r.clip.must_interrupt for r in replays() if r.clip.label == "interrupt"} == {True}


@pytest.mark.parametrize("label", ["cough", "tv", "echo"])
def test_coughs_tv_and_echo_never_interrupt(label: str) -> None:
    for r in of(label):
        assert r.decisions == [], r.clip.name


def test_a_backchannel_never_stands_as_an_interrupt() -> None:
    """A backchannel may trip the onset rule (nothing tells "okay" from "okay, wait" in its
    first 200 ms), but it is always undone: FalseInterrupt follows, and no word or voice rule
    ever fires on it."""
    for r in of("backchannel"):
        kinds = [type(d).__name__ for _, d in r.decisions]
        assert kinds in ([], ["Interrupt", "FalseInterrupt"]), (r.clip.name, kinds)
        hit = r.interrupt
        if hit is not None:
            assert hit[1].reason == "onset", r.clip.name


def test_real_interruptions_are_cleared_within_the_bound() -> None:
    late = []
    for r in of("interrupt"):
        hit = r.interrupt
        assert hit is not None, f"missed: {r.clip.name}"
        index, interrupt = hit
        # The clear is decided on the frame that completes the deciding window: audio position
        # of that frame relative to the labelled onset, in frames.
        assert index == frame_of(r.clip, interrupt.trigger_audio_ms - 1)
        if (index + 1) * FRAME_MS - r.clip.onset_ms > BOUND_MS:
            late.append(r.clip.name)
        # Nothing undoes a real interruption.
        assert not r.undone, r.clip.name
    # Interruptions opening with a long unvoiced consonant ("stop", "sorry") can only be heard
    # once their vowel starts; the rest are within the bound.
    assert len(late) <= 4, late


def test_rates_on_the_clip_set() -> None:
    summary = summarize(list(replays()), BOUND_MS)
    assert summary["missed_interrupt_rate"] == 0.0
    assert summary["false_by_label"] == {  # type: ignore[comparison-overlap]
        "backchannel": "36/36",
        "cough": "0/6",
        "echo": "0/3",
        "noise": "1/6",
        "tv": "0/6",
    }


def test_vad_reports_a_probability_per_window_even_for_long_chunks() -> None:
    """The gate's windows are zipped with the VAD's probabilities: one each, in order."""
    from shared.speech.vad import SileroVad

    clip = next(c for c in load_clips() if c.label == "interrupt")
    vad, gate = SileroVad(model()), SpeechGate()
    vad.feed(clip.audio[:16000])  # two seconds in one call (split inside at 8000 bytes)
    assert len(vad.probabilities) == len(gate.feed(clip.audio[:16000])) == 16000 // 256
