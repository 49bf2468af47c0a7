"""Streaming Silero VAD (v5, ONNX) over 8 kHz µ-law caller audio.

The model is loaded once per process (`load_vad_model`, at app startup) and shared by every
call; each call owns a `SileroVad` with its own recurrent state, context and sample remainder.
ONNX Runtime's `InferenceSession.run` is thread-safe, so sharing the session is safe.

Inference replicates `silero_vad.utils_vad.OnnxWrapper` (silero-vad 6.2.3) exactly: windows of
256 samples at sr=8000, each prefixed with the last 32 samples of the previous window (zeros
after a reset), so the model input is [1, 288]; `stateN` is fed back as `state`.

Decisions (hysteresis as in silero's `VADIterator`): a window is speech when its probability is
>= `threshold`, silence when < `threshold - 0.15`, and in between it changes nothing.
`VoiceStarted` is emitted once speech has lasted `min_speech_ms` (a silence window cancels a
pending onset); `VoiceStopped` once silence has lasted `min_silence_ms`. Both carry the audio
time (ms of audio fed since creation/reset) of the first window of the run, so they are emitted
`min_speech_ms` / `min_silence_ms` (+ up to one 32 ms window) after the time they report.

Energy gate: a window whose RMS is below `energy_floor_dbfs` (-55 dBFS: under any voice,
above digital silence and typical line hiss) counts as probability 0 without running the
model, and leaves the recurrent state as it was. While the agent talks the caller is mostly
silent, so this skips most inferences (the model is most of the VAD's CPU); with
`energy_floor_dbfs=None` every window is modelled, as silero does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from pydantic import BaseModel, ConfigDict, Field

from shared.codecs import ulaw_to_pcm16

SAMPLE_RATE = 8000
WINDOW_SAMPLES = 256  # Silero v5 at 8 kHz
CONTEXT_SAMPLES = 32  # Silero v5 at 8 kHz
WINDOW_MS = WINDOW_SAMPLES * 1000 / SAMPLE_RATE  # 32 ms
NEG_THRESHOLD_GAP = 0.15  # VADIterator's hysteresis
MAX_FRAME_BYTES = 8000  # one second of audio per call to feed(); Twilio sends 160
DEFAULT_MODEL_PATH = Path(__file__).parent / "models" / "silero_vad.onnx"

FloatArray = npt.NDArray[np.float32]


class VadOptions(BaseModel):
    """Speech decision thresholds for one call's VAD."""

    model_config = ConfigDict(frozen=True)

    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="Speech probability threshold.")
    min_speech_ms: int = Field(200, ge=0, description="Speech needed before VoiceStarted.")
    min_silence_ms: int = Field(300, ge=0, description="Silence needed before VoiceStopped.")
    energy_floor_dbfs: float | None = Field(
        -55.0, le=0.0, description="Windows quieter than this (RMS) are silence, unmodelled."
    )


@dataclass(frozen=True)
class VoiceStarted:
    """Caller voice began at `audio_ms` (confirmed `min_speech_ms` later)."""

    audio_ms: int


@dataclass(frozen=True)
class VoiceStopped:
    """Caller voice ended at `audio_ms` (confirmed `min_silence_ms` later)."""

    audio_ms: int


VadEvent = VoiceStarted | VoiceStopped


class VadModel:
    """The Silero ONNX session, shared by all calls of a process."""

    def __init__(self, session: ort.InferenceSession) -> None:
        names = {i.name for i in session.get_inputs()}
        if names != {"input", "state", "sr"}:
            raise ValueError(f"not a Silero v5 VAD model (inputs {sorted(names)})")
        self._session = session
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def infer(self, window: FloatArray, state: FloatArray) -> tuple[float, FloatArray]:
        """Speech probability of `window` ([1, 288] float32) and the next state."""
        prob, next_state = self._session.run(
            ["output", "stateN"], {"input": window, "state": state, "sr": self._sr}
        )
        return float(prob[0, 0]), np.asarray(next_state, dtype=np.float32)


def load_vad_model(path: Path = DEFAULT_MODEL_PATH) -> VadModel:
    """Load the Silero ONNX model single-threaded (one core runs many calls)."""
    if not path.is_file():
        raise FileNotFoundError(f"Silero VAD model not found: {path}")
    opts = ort.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    return VadModel(session)


class SileroVad:
    """One call's streaming VAD: feed µ-law frames, get voice onset/offset events."""

    def __init__(self, model: VadModel, options: VadOptions | None = None) -> None:
        self._model = model
        self.options = options or VadOptions()
        self._neg_threshold = self.options.threshold - NEG_THRESHOLD_GAP
        floor = self.options.energy_floor_dbfs
        # Sum of squares of a window at the floor's RMS (samples are in [-1, 1]).
        self._floor_energy = (
            -1.0 if floor is None else WINDOW_SAMPLES * (10.0 ** (floor / 20.0)) ** 2
        )
        self.inferences = 0  # windows the model actually ran on
        self.probabilities: list[float] = []  # of the windows the latest feed() completed
        self.reset()

    def reset(self) -> None:
        """Forget all audio: state, context, remainder, decisions; audio time restarts at 0."""
        self._state: FloatArray = np.zeros((2, 1, 128), dtype=np.float32)
        self._buffer: FloatArray = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)  # context+pending
        self._windows = 0
        self._speaking = False
        self._run_start: int | None = None  # window index where the pending change began
        self.last_probability = 0.0

    @property
    def audio_ms(self) -> float:
        """Audio time covered by the windows evaluated so far."""
        return self._windows * WINDOW_MS

    @property
    def speaking(self) -> bool:
        """True between VoiceStarted and VoiceStopped."""
        return self._speaking

    def feed(self, frame: bytes) -> list[VadEvent]:
        """Account one µ-law 8 kHz chunk (normally 160 bytes = 20 ms); return new events."""
        if not isinstance(frame, bytes | bytearray | memoryview):
            raise TypeError(f"frame must be bytes, not {type(frame).__name__}")
        if len(frame) > MAX_FRAME_BYTES:  # a second of audio at a time: bounded buffers
            view = memoryview(frame)
            found: list[VadEvent] = []
            probabilities: list[float] = []
            for at in range(0, len(view), MAX_FRAME_BYTES):
                found += self.feed(bytes(view[at : at + MAX_FRAME_BYTES]))
                probabilities += self.probabilities
            self.probabilities = probabilities
            return found
        samples = ulaw_to_pcm16(bytes(frame)).astype(np.float32) / 32768.0
        self._buffer = np.concatenate((self._buffer, samples))
        events: list[VadEvent] = []
        self.probabilities = []
        size = CONTEXT_SAMPLES + WINDOW_SAMPLES
        while self._buffer.shape[0] >= size:
            window = self._buffer[:size]
            body = window[CONTEXT_SAMPLES:]
            if float(np.dot(body, body)) < self._floor_energy:
                prob = 0.0  # quieter than any voice: silence, state untouched
            else:
                prob, self._state = self._model.infer(window.reshape(1, size), self._state)
                self.inferences += 1
            self._buffer = self._buffer[WINDOW_SAMPLES:]  # keeps the last 32 as context
            self.probabilities.append(prob)
            event = self._decide(prob)
            self._windows += 1
            if event is not None:
                events.append(event)
        return events

    def _decide(self, prob: float) -> VadEvent | None:
        self.last_probability = prob
        index = self._windows
        o = self.options
        if not self._speaking:
            if prob >= o.threshold:
                if self._run_start is None:
                    self._run_start = index
                if (index + 1 - self._run_start) * WINDOW_MS >= o.min_speech_ms:
                    self._speaking, start, self._run_start = True, self._run_start, None
                    return VoiceStarted(audio_ms=round(start * WINDOW_MS))
            elif prob < self._neg_threshold:
                self._run_start = None
            return None
        if prob >= o.threshold:
            self._run_start = None
        elif prob < self._neg_threshold:
            if self._run_start is None:
                self._run_start = index
            if (index + 1 - self._run_start) * WINDOW_MS >= o.min_silence_ms:
                self._speaking, start, self._run_start = False, self._run_start, None
                return VoiceStopped(audio_ms=round(start * WINDOW_MS))
        return None
