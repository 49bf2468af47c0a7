"""Pure unit tests for the Deepgram simulators: SttScriptEngine and the TTS audio rule."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from sim.deepgram_tts_audio import synthesize
from sim.deepgram_tts_server import audio_bytes_for_text
from sim.stt_script import SttEngineOptions, SttScriptEngine

FRAME = 160  # 20 ms of 8 kHz µ-law
SILENCE = b"\xff" * FRAME
SPEECH = bytes(range(0x10, 0x10 + FRAME))


# ------------------------------------------------------------------ engine (pure)


def _engine(**kw: Any) -> SttScriptEngine:
    opts = SttEngineOptions(
        sample_rate=8000,
        bytes_per_sample=1,
        interim_results=True,
        endpointing_ms=300,
        utterance_end_ms=1000,
        vad_events=True,
        request_id="rid-1",
        **kw,
    )
    return SttScriptEngine(opts, now=lambda: datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))


def _feed_ms(engine: SttScriptEngine, ms: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for _ in range(ms // 20):
        out += engine.feed(SILENCE)
    return out


def test_engine_timeline() -> None:
    eng = _engine()
    eng.add_utterance("Book a table, please.", 400, 1200)
    msgs = _feed_ms(eng, 3000)
    types = [m["type"] for m in msgs]
    assert types[0] == "SpeechStarted" and msgs[0]["timestamp"] == 0.4
    assert msgs[0]["channel"] == [0]
    interims = [m for m in msgs if m["type"] == "Results" and not m["is_final"]]
    assert [m["channel"]["alternatives"][0]["transcript"] for m in interims] == [
        "Book",
        "Book a",
        "Book a table,",
        "Book a table, please.",
    ]  # interims at 600, 800, 1000 ms and at the end (1200); word k ends at 400 + 200*(k+1)
    assert all(m["start"] == 0.4 for m in interims)
    assert [m["duration"] for m in interims] == [0.2, 0.4, 0.6, 0.8]
    finals = [m for m in msgs if m["type"] == "Results" and m["is_final"]]
    assert len(finals) == 1
    fin = finals[0]
    assert fin["speech_final"] is True and fin["from_finalize"] is False
    alt = fin["channel"]["alternatives"][0]
    assert alt["transcript"] == "Book a table, please."
    assert [w["word"] for w in alt["words"]] == ["book", "a", "table", "please"]
    assert [w["punctuated_word"] for w in alt["words"]][-1] == "please."
    assert [(w["start"], w["end"]) for w in alt["words"]] == [
        (0.4, 0.6),
        (0.6, 0.8),
        (0.8, 1.0),
        (1.0, 1.2),
    ]
    assert fin["start"] == 0.4 and fin["duration"] == 0.8
    assert fin["channel_index"] == [0, 1]
    assert fin["metadata"]["request_id"] == "rid-1"
    assert set(fin["metadata"]["model_info"]) == {"name", "version", "arch"}
    assert types == ["SpeechStarted"] + ["Results"] * 5 + ["UtteranceEnd"]
    assert msgs[-1] == {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 1.2}


def test_interims_may_say_other_words_than_the_final() -> None:
    eng = _engine()
    eng.add_utterance("Book a table, please.", 400, 1200, interim_text="Book a cable, please.")
    msgs = _feed_ms(eng, 3000)
    results = [m for m in msgs if m["type"] == "Results"]
    texts = [(m["is_final"], m["channel"]["alternatives"][0]["transcript"]) for m in results]
    assert texts[-2:] == [(False, "Book a cable, please."), (True, "Book a table, please.")]
    with pytest.raises(ValueError):
        eng.add_utterance("Two words", 1400, 1800, interim_text="three words here")


def test_engine_final_due_exactly_at_endpoint() -> None:
    eng = _engine()
    eng.add_utterance("hello", 0, 500)
    assert not [m for m in _feed_ms(eng, 780) if m["type"] == "Results" and m["is_final"]]
    fin = [m for m in _feed_ms(eng, 20) if m["type"] == "Results"]
    assert len(fin) == 1 and fin[0]["is_final"] is True  # 800 ms = 500 + 300


def test_engine_without_endpointing_or_interims() -> None:
    opts = SttEngineOptions(endpointing_ms=None, interim_results=False, utterance_end_ms=1000)
    eng = SttScriptEngine(opts)
    eng.add_utterance("yes", 100, 300)
    early = _feed_ms(eng, 780)
    assert early == []
    fin = _feed_ms(eng, 40)
    assert [m["speech_final"] for m in fin] == [False]
    assert [m["is_final"] for m in fin] == [True]
    assert _feed_ms(eng, 3000) == []  # no UtteranceEnd without interim_results


def test_engine_finalize_mid_utterance_then_remainder() -> None:
    eng = _engine()
    eng.add_utterance("one two three four", 0, 800)
    _feed_ms(eng, 500)  # words end at 200,400,600,800
    flushed = eng.finalize()
    assert len(flushed) == 1
    assert flushed[0]["from_finalize"] is True and flushed[0]["is_final"] is True
    assert flushed[0]["speech_final"] is False
    assert flushed[0]["channel"]["alternatives"][0]["transcript"] == "one two"
    assert eng.finalize() == []  # nothing new spoken since
    rest = [m for m in _feed_ms(eng, 1000) if m["type"] == "Results" and m["is_final"]]
    assert [m["channel"]["alternatives"][0]["transcript"] for m in rest] == ["three four"]
    assert rest[0]["start"] == 0.5 and rest[0]["speech_final"] is True


def test_engine_finalize_nothing_pending_and_close_metadata() -> None:
    eng = _engine()
    assert eng.finalize() == []
    data = SILENCE * 10 + SPEECH * 5
    eng.feed(data)
    out = eng.close()
    assert len(out) == 1
    meta = out[0]
    assert meta["type"] == "Metadata" and meta["transaction_key"] == "deprecated"
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["duration"] == 0.3 and meta["channels"] == 1
    assert meta["created"] == "2025-01-02T03:04:05.000Z"
    assert meta["models"] == [SttEngineOptions().model.uuid]
    assert meta["request_id"] == "rid-1"
    with pytest.raises(RuntimeError):
        eng.feed(SILENCE)


def test_engine_close_flushes_awaiting_endpoint_and_linear16_clock() -> None:
    eng = SttScriptEngine(SttEngineOptions(sample_rate=16000, bytes_per_sample=2))
    eng.add_utterance("hi there", 0, 100)
    assert eng.feed(b"\x00" * 3200) == []  # 100 ms of 16 kHz linear16
    assert eng.audio_ms == 100.0
    out = eng.close()
    assert [m["type"] for m in out] == ["Results", "Metadata"]
    assert out[0]["from_finalize"] is True
    assert out[0]["channel"]["alternatives"][0]["transcript"] == "hi there"


def test_audio_rule_and_waveform() -> None:
    assert audio_bytes_for_text("Hello", 60, 8000, 1) == 2400
    assert audio_bytes_for_text("Hello", 60, 24000, 2) == 14400
    audio = synthesize("Hello", 60, 8000, "mulaw")
    assert len(audio) == 2400 and audio.count(0xFF) < 100
    assert synthesize("Hello", 60, 8000, "mulaw") == audio  # deterministic
    assert synthesize("Hellp", 60, 8000, "mulaw") != audio
    assert len(synthesize("Hi", 60, 16000, "linear16")) == audio_bytes_for_text("Hi", 60, 16000, 2)
