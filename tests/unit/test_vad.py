"""Streaming Silero VAD with the real shipped ONNX model, on synthetic 8 kHz µ-law audio."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from pydantic import ValidationError

from shared.codecs import ulaw_to_pcm16
from shared.speech import vad as vad_mod
from shared.speech.vad import (
    SileroVad,
    VadModel,
    VadOptions,
    VoiceStarted,
    VoiceStopped,
    load_vad_model,
)
from sim.speech_audio import speech_like, to_ulaw

SR = 8000
FRAME = 160
Signal = npt.NDArray[np.float64]


def ulaw(signal: Signal) -> bytes:
    return to_ulaw(signal)


def frames(data: bytes, size: int = FRAME) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def run(vad: SileroVad, data: bytes, size: int = FRAME) -> list[tuple[int, object]]:
    """(audio ms of the end of the chunk that produced it, event) for every event."""
    out: list[tuple[int, object]] = []
    fed = 0
    for chunk in frames(data, size):
        fed += len(chunk)
        out += [(fed // 8, e) for e in vad.feed(chunk)]
    return out


@pytest.fixture(scope="module")
def model() -> VadModel:
    return load_vad_model()


def _onset_errors_ms(model: VadModel, seed: int) -> tuple[int, int]:
    """(reported onset - true onset, reported offset - true end) for one synthetic clip."""
    lead, tail = SR // 2, SR
    speech, first_voiced = speech_like(10, seed)
    data = ulaw(np.concatenate([np.zeros(lead), speech, np.zeros(tail)]))
    onset_ms, end_ms = (lead + first_voiced) // 8, (lead + speech.size) // 8
    events = run(SileroVad(model), data)
    assert [type(e) for _, e in events] == [VoiceStarted, VoiceStopped]
    (started_at, started), (stopped_at, stopped) = events
    assert isinstance(started, VoiceStarted) and isinstance(stopped, VoiceStopped)
    assert started_at - started.audio_ms >= 200  # confirmed after min_speech_ms
    assert stopped_at - stopped.audio_ms >= 300  # confirmed after min_silence_ms
    assert started_at <= onset_ms + 750  # detected while the caller is still talking
    return started.audio_ms - onset_ms, stopped.audio_ms - end_ms


def test_onset_and_offset_of_speech_like_signals(model: VadModel) -> None:
    errors = [_onset_errors_ms(model, seed) for seed in range(1, 13)]
    onset_errors = sorted(e for e, _ in errors)
    assert all(-64 <= e <= 500 for e in onset_errors), onset_errors
    assert onset_errors[len(onset_errors) // 2] <= 40, onset_errors  # median: within a window
    assert all(-200 <= e <= 250 for _, e in errors), errors


@pytest.mark.parametrize(
    "name",
    ["digital silence", "noise -40 dBFS", "noise -30 dBFS", "noise -20 dBFS", "mains hum"],
)
def test_no_onset_without_speech(model: VadModel, name: str) -> None:
    n = SR * 3
    rng = np.random.default_rng(7)
    t = np.arange(n) / SR
    signal = {
        "digital silence": np.zeros(n),
        "noise -40 dBFS": rng.normal(0, 0.01, n),
        "noise -30 dBFS": rng.normal(0, 0.03, n),
        "noise -20 dBFS": rng.normal(0, 0.1, n),
        "mains hum": 0.1 * np.sin(2 * np.pi * 50 * t) + 0.05 * np.sin(2 * np.pi * 150 * t),
    }[name]
    vad = SileroVad(model)
    assert run(vad, ulaw(signal)) == []
    assert vad.speaking is False and vad.audio_ms == 93 * 32  # 24000 samples = 93 windows


def _reference_probabilities(model: VadModel, data: bytes) -> list[float]:
    """silero_vad.utils_vad.OnnxWrapper.__call__ (6.2.3) transcribed to numpy, whole clip."""
    x = ulaw_to_pcm16(data).astype(np.float32) / 32768.0
    state = np.zeros((2, 1, 128), dtype=np.float32)
    context = np.zeros((1, 32), dtype=np.float32)
    probs = []
    for i in range(0, x.size - 255, 256):
        window = np.concatenate([context, x[i : i + 256].reshape(1, 256)], axis=1)
        prob, state = model.infer(window, state)
        context = window[..., -32:]
        probs.append(prob)
    return probs


def test_streaming_matches_the_official_wrapper(model: VadModel) -> None:
    speech, _ = speech_like(6, seed=3)
    data = ulaw(np.concatenate([np.zeros(2000), speech, np.zeros(4000)]))
    vad = SileroVad(model, VadOptions(energy_floor_dbfs=None))  # every window modelled
    streamed: list[float] = []
    for chunk in frames(data, 77):  # odd chunk size: remainder kept between feeds
        windows_before = vad.audio_ms
        vad.feed(chunk)
        if vad.audio_ms != windows_before:
            streamed.append(vad.last_probability)
    reference = _reference_probabilities(model, data)
    assert len(streamed) == len(reference) == len(data) // 256
    assert max(reference) > 0.9  # the clip exercises the speech range
    np.testing.assert_allclose(streamed, reference, rtol=0, atol=1e-6)


def test_energy_gate_skips_silence_but_not_voice(model: VadModel) -> None:
    """A caller silent under the agent's voice costs (almost) no inference; decisions on the
    speech are those of the ungated model."""
    speech, _ = speech_like(8, seed=6)
    rng = np.random.default_rng(1)
    hiss = rng.normal(0, 10 ** (-65 / 20), 24000)  # 3 s of -65 dBFS line noise
    data = ulaw(np.concatenate([hiss, speech, hiss]))
    gated, ungated = SileroVad(model), SileroVad(model, VadOptions(energy_floor_dbfs=None))
    gated_events, ungated_events = run(gated, data), run(ungated, data)
    assert [type(e) for _, e in gated_events] == [VoiceStarted, VoiceStopped]
    starts = [e.audio_ms for _, e in gated_events], [e.audio_ms for _, e in ungated_events]
    assert starts[0][0] == starts[1][0]  # same onset
    # The offset may come a few windows sooner: the model's probability decays after the
    # voice stops, a quiet window under the floor is silence at once.
    assert 0 <= starts[1][1] - starts[0][1] <= 128
    windows = len(data) // 256
    assert ungated.inferences == windows
    assert gated.inferences < windows - 2 * 24000 // 256 + 8  # the hiss was never modelled


def test_chunk_size_does_not_change_events(model: VadModel) -> None:
    speech, _ = speech_like(8, seed=2)
    data = ulaw(np.concatenate([np.zeros(4000), speech, np.zeros(8000)]))
    by_frame = [e for _, e in run(SileroVad(model), data, FRAME)]
    by_odd = [e for _, e in run(SileroVad(model), data, 33)]
    assert by_frame == by_odd and len(by_frame) == 2


def test_reset_restarts_clock_and_state(model: VadModel) -> None:
    speech, _ = speech_like(8, seed=4)
    data = ulaw(np.concatenate([np.zeros(4000), speech, np.zeros(8000)]))
    vad = SileroVad(model)
    first = run(vad, data)
    for chunk in frames(data[: len(data) // 2]):  # leave it mid-speech
        vad.feed(chunk)
    vad.reset()
    assert vad.audio_ms == 0 and vad.speaking is False
    assert run(vad, data) == first


def test_calls_share_the_model_but_not_state(model: VadModel) -> None:
    speech, _ = speech_like(8, seed=5)
    talking = ulaw(np.concatenate([np.zeros(4000), speech]))
    quiet = ulaw(np.zeros(len(talking)))
    a, b = SileroVad(model), SileroVad(model)
    events_a, events_b = [], []
    for fa, fb in zip(frames(talking), frames(quiet), strict=True):  # interleaved, one process
        events_a += a.feed(fa)
        events_b += b.feed(fb)
    assert [type(e) for e in events_a] == [VoiceStarted] and events_b == []


class _ScriptedProbabilities(VadModel):
    """Replays fixed probabilities so the decision rules can be checked exactly."""

    def __init__(self, probs: list[float]) -> None:
        self._probs = iter(probs)

    def infer(
        self, window: npt.NDArray[np.float32], state: npt.NDArray[np.float32]
    ) -> tuple[float, npt.NDArray[np.float32]]:
        assert window.shape == (1, 288) and state.shape == (2, 1, 128)
        return next(self._probs), state


def _events_for(probs: list[float], options: VadOptions) -> list[object]:
    options = options.model_copy(update={"energy_floor_dbfs": None})  # silent bytes, scripted
    vad = SileroVad(_ScriptedProbabilities(probs), options)
    return vad.feed(b"\xff" * 256 * len(probs))


def test_decision_rules_with_hysteresis() -> None:
    opts = VadOptions(threshold=0.5, min_speech_ms=64, min_silence_ms=96)  # 2 and 3 windows
    # one speech window, then a silence window cancels the pending onset
    assert _events_for([0.9, 0.1, 0.1], opts) == []
    # 0.4 is between 0.35 and 0.5: neither speech nor silence, so it does not cancel
    assert _events_for([0.1, 0.9, 0.4, 0.9], opts) == [VoiceStarted(audio_ms=32)]
    probs = [0.9, 0.9, 0.2, 0.2, 0.9, 0.2, 0.4, 0.2, 0.2, 0.2]
    assert _events_for(probs, opts) == [VoiceStarted(0), VoiceStopped(audio_ms=160)]


def test_bad_input_is_rejected(model: VadModel) -> None:
    vad = SileroVad(model)
    with pytest.raises(TypeError):
        vad.feed("not audio")  # type: ignore[arg-type]
    assert vad.feed(b"") == [] and vad.audio_ms == 0
    with pytest.raises(ValidationError):
        VadOptions(threshold=1.5)
    with pytest.raises(ValidationError):
        VadOptions(min_speech_ms=-1)
    with pytest.raises(FileNotFoundError):
        load_vad_model(vad_mod.DEFAULT_MODEL_PATH.with_name("missing.onnx"))


def test_oversized_chunk_is_fed_a_second_at_a_time(model: VadModel) -> None:
    """More than MAX_FRAME_BYTES at once (a hostile media payload) is no error: the VAD
    decides exactly as if the audio had come in 20 ms frames."""
    silence = b"\xff" * 4000
    speech, _ = speech_like(8, seed=6)
    audio = silence + ulaw(speech) + silence * 3
    assert len(audio) > vad_mod.MAX_FRAME_BYTES * 2
    whole, framed = SileroVad(model), SileroVad(model)
    events = whole.feed(audio)
    assert events == [e for chunk in frames(audio) for e in framed.feed(chunk)]
    assert [type(e) for e in events] == [VoiceStarted, VoiceStopped]
    assert whole.audio_ms == framed.audio_ms
