"""Pure tests of the Twilio simulator pieces: playback-queue model, request signing,
TwiML parsing, inbound params and caller audio frames."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from sim.playout import PlayoutQueue
from sim.twilio_media import silence_frame, speech_frame
from sim.twilio_webhook import (
    TwimlError,
    inbound_call_params,
    new_sid,
    parse_twiml,
    sign_request,
)

TOKEN = "12345678901234567890123456789012"
URL = "https://gw.example.test/twilio/voice"


def audio(ms: int, byte: int = 0x10) -> bytes:
    return bytes([byte]) * (8 * ms)


# -- PlayoutQueue ----------------------------------------------------------------------


def test_mark_echoed_only_after_preceding_audio_played() -> None:
    q = PlayoutQueue()
    q.push_audio(audio(100), now_ms=0)
    q.push_mark("m1", now_ms=0)
    assert q.advance(50) == []
    assert q.advance(99.9) == []
    assert q.advance(100) == ["m1"]
    assert q.advance(200) == []  # echoed once only
    assert q.played_bytes == 800


def test_marks_in_order_and_idle_gap_not_counted() -> None:
    q = PlayoutQueue()
    q.push_audio(audio(40), 0)
    q.push_mark("a", 0)
    q.push_audio(audio(60), 0)
    q.push_mark("b", 0)
    assert q.advance(1000) == ["a", "b"]
    # Queue was idle from t=100 to 1000; new audio starts playing at 1000, not at 100.
    q.push_audio(audio(20), 1000)
    q.push_mark("c", 1000)
    assert q.advance(1010) == []
    assert q.advance(1020) == ["c"]


def test_mark_on_idle_queue_is_due_immediately() -> None:
    q = PlayoutQueue()
    q.push_mark("first", 5)
    assert q.advance(5) == ["first"]


def test_clear_drops_audio_and_echoes_pending_marks_in_order() -> None:
    q = PlayoutQueue()
    q.push_audio(audio(100, 0x11), 0)
    q.push_mark("m1", 0)
    q.push_audio(audio(100, 0x22), 0)
    q.push_mark("m2", 0)
    q.push_audio(audio(100, 0x33), 0)
    q.push_mark("m3", 0)
    assert q.advance(150) == ["m1"]
    assert q.clear(150) == ["m2", "m3"]
    assert q.is_idle(150)
    assert q.queued_ms == 0
    assert q.played_audio == audio(100, 0x11) + audio(50, 0x22)
    assert q.dropped_audio == audio(50, 0x22) + audio(100, 0x33)
    assert q.advance(10_000) == []
    assert [(s.mark, s.played) for s in q.segments] == [("m1", True), ("m2", False), ("m3", False)]


def test_clear_returns_marks_that_were_already_due_first() -> None:
    q = PlayoutQueue()
    q.push_audio(audio(10), 0)
    q.push_mark("done", 0)
    q.push_audio(audio(100), 0)
    q.push_mark("pending", 0)
    # "done" became due at t=10 but was not collected by advance() before the clear.
    assert q.clear(50) == ["done", "pending"]
    segs = q.segments
    assert segs[0].played is True and segs[1].played is False


def test_idle_detection_and_drain_time() -> None:
    q = PlayoutQueue()
    assert q.is_idle(0)
    assert q.drained_at_ms is None
    q.push_audio(audio(200), 1000)
    assert not q.is_idle(1100)
    assert q.queued_ms == 100
    assert q.drained_at_ms is None
    assert q.is_idle(1300)
    assert q.drained_at_ms == 1200  # exact end of playback, not the time we looked
    q.push_audio(audio(20), 1500)
    assert q.drained_at_ms is None
    assert not q.is_idle(1510)


def test_audio_pushed_while_playing_is_appended() -> None:
    q = PlayoutQueue()
    q.push_audio(audio(100, 1), 0)
    q.push_audio(audio(100, 2), 50)
    q.push_mark("end", 60)
    assert q.advance(199) == []
    assert q.advance(200) == ["end"]
    assert q.played_audio == audio(100, 1) + audio(100, 2)


def test_unmarked_tail_segment_cut_by_clear() -> None:
    q = PlayoutQueue()
    q.push_audio(audio(50), 0)
    q.push_mark("m", 0)
    q.push_audio(audio(50), 0)
    assert q.clear(20) == ["m"]
    assert [(s.mark, s.played, len(s.audio)) for s in q.segments] == [
        ("m", False, 400),
        (None, False, 400),
    ]


# -- signing ---------------------------------------------------------------------------


def _params() -> dict[str, str]:
    return inbound_call_params(
        call_sid=new_sid("CA"),
        account_sid=new_sid("AC"),
        from_number="+447700900123",
        to_number="+442071838750",
    )


def test_webhook_signature_validates_with_twilio_validator() -> None:
    params = _params()
    sig = sign_request(TOKEN, URL, params)
    assert RequestValidator(TOKEN).validate(URL, params, sig)
    assert not RequestValidator("another-token-another-token-0000").validate(URL, params, sig)
    tampered = {**params, "From": "+15550000000"}
    assert not RequestValidator(TOKEN).validate(URL, tampered, sig)


def test_ws_signature_is_over_url_without_params() -> None:
    ws_url = "wss://media.example.test/twilio/stream"
    sig = sign_request(TOKEN, ws_url)
    assert RequestValidator(TOKEN).validate(ws_url, {}, sig)
    assert not RequestValidator("x" * 32).validate(ws_url, {}, sig)


def test_inbound_params_shape() -> None:
    params = inbound_call_params(
        call_sid="CA" + "a" * 32,
        account_sid="AC" + "b" * 32,
        from_number="+447700900123",
        to_number="+442071838750",
        places={"FromCity": "LONDON", "ToCountry": "GB"},
    )
    assert params["CallStatus"] == "ringing"
    assert params["Direction"] == "inbound"
    assert params["ApiVersion"] == "2010-04-01"
    assert params["Caller"] == params["From"] and params["Called"] == params["To"]
    assert params["CallerCity"] == "LONDON" and params["CalledCountry"] == "GB"
    assert params["ToZip"] == "" and params["CallerState"] == ""
    assert all(isinstance(v, str) for v in params.values())
    sid = new_sid("CA")
    assert len(sid) == 34 and sid.startswith("CA") and int(sid[2:], 16) >= 0


# -- TwiML -----------------------------------------------------------------------------

CONNECT_TWIML = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Connect action="/twilio/after-stream?x=1">
    <Stream url="ws://127.0.0.1:9000/twilio/stream">
      <Parameter name="token" value="abc.def"/>
      <Parameter name="tenant" value="acme"/>
    </Stream>
  </Connect>
  <Say>Goodbye</Say>
</Response>"""

HANGUP_TWIML = """<?xml version="1.0" encoding="UTF-8"?>
<Response><Say>Sorry, this number is not in service.</Say><Hangup/></Response>"""


def test_parse_connect_stream_twiml() -> None:
    parsed = parse_twiml(CONNECT_TWIML, base_url="http://gw.test:8000/twilio/voice")
    assert parsed.stream is not None
    assert parsed.stream.url == "ws://127.0.0.1:9000/twilio/stream"
    assert parsed.stream.parameters == {"token": "abc.def", "tenant": "acme"}
    assert parsed.connect_action == "http://gw.test:8000/twilio/after-stream?x=1"
    assert parsed.connect_method == "POST"
    assert parsed.verbs == ["Connect", "Say"]
    assert parsed.verbs_after_connect == ["Say"]
    assert not parsed.hangup


def test_parse_say_hangup_twiml() -> None:
    parsed = parse_twiml(HANGUP_TWIML)
    assert parsed.stream is None
    assert parsed.connect_action is None
    assert parsed.says == ["Sorry, this number is not in service."]
    assert parsed.hangup
    assert parsed.verbs == ["Say", "Hangup"]


@pytest.mark.parametrize("bad", ["not xml", "<Html><Body/></Html>", ""])
def test_parse_rejects_non_twiml(bad: str) -> None:
    with pytest.raises(TwimlError):
        parse_twiml(bad)


# -- audio frames ----------------------------------------------------------------------


def test_frames_are_20ms_and_speech_is_never_silence() -> None:
    assert silence_frame() == b"\xff" * 160
    for i in range(50):
        frame = speech_frame(i)
        assert len(frame) == 160
        assert 0xFF not in frame and 0x7F not in frame
    assert speech_frame(7) == speech_frame(7)  # deterministic
