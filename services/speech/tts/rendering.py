"""The process's Piper engine and thread pool, and text -> encoded audio chunks off the loop
(shared by the `/v1/speak` socket and REST endpoint)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from services.speech.tts.aura_protocol import AudioFormat
from services.speech.tts.phrase_edges import ends_mid_sentence, goes_on_a_sentence, trim_edges
from services.speech.tts.piper_engine import PiperEngine, shared_engine
from services.speech.tts.telephony_audio import encode
from shared.runtime.settings import Settings

_executor: ThreadPoolExecutor | None = None


def render_pool(settings: Settings) -> ThreadPoolExecutor:
    """The threads every socket's Piper renders share (`speech_tts_threads`)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(settings.speech_tts_threads, thread_name_prefix="piper")
    return _executor


async def load_engine(settings: Settings) -> PiperEngine:
    """The process's Piper engine (loaded once, off the event loop); SpeechModelMissing
    when the optional `speech` extra is not installed."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        render_pool(settings),
        shared_engine,
        settings.speech_tts_onnx_threads,
        settings.speech_tts_phrase_phonemes,
    )


async def rendered_audio(
    engine: PiperEngine, pool: ThreadPoolExecutor, text: str, fmt: AudioFormat
) -> AsyncIterator[bytes]:
    """`text` as audio in `fmt`, one chunk per phrase, each rendered in `pool`. A text that
    is part of a sentence loses the silence at its cut edge (`phrase_edges`)."""
    loop = asyncio.get_running_loop()
    phrases = await loop.run_in_executor(pool, engine.phrases, text)
    lead, tail = goes_on_a_sentence(text), ends_mid_sentence(text)
    for i, phrase in enumerate(phrases):
        audio = await loop.run_in_executor(pool, engine.render, phrase)
        first, last = i == 0, i == len(phrases) - 1
        if (lead and first) or (tail and last):
            audio = trim_edges(audio, engine.sample_rate, lead and first, tail and last)
        yield encode(audio, engine.sample_rate, fmt)
