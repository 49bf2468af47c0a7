"""Twilio Media Streams parsing and outbound builders, with the documented JSON shapes."""

from __future__ import annotations

import base64
import json

import pytest

from services.media.twilio import protocol as tw

ACCOUNT = "AC11111111111111111111111111111111"
STREAM = "MZ22222222222222222222222222222222"
CALL = "CA33333333333333333333333333333333"

CONNECTED = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
START = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": ACCOUNT,
        "streamSid": STREAM,
        "callSid": CALL,
        "tracks": ["inbound"],
        "customParameters": {"tenant": "acme", "lead_id": "42"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    },
    "streamSid": STREAM,
}
AUDIO = bytes(range(160))
MEDIA = {
    "event": "media",
    "sequenceNumber": "2",
    "media": {
        "track": "inbound",
        "chunk": "1",
        "timestamp": "52",
        "payload": base64.b64encode(AUDIO).decode(),
    },
    "streamSid": STREAM,
}
DTMF = {
    "event": "dtmf",
    "streamSid": STREAM,
    "sequenceNumber": "57",
    "dtmf": {"track": "inbound_track", "digit": "5"},
}
MARK = {"event": "mark", "sequenceNumber": "103", "streamSid": STREAM, "mark": {"name": "utt-7"}}
STOP = {
    "event": "stop",
    "sequenceNumber": "412",
    "stop": {"accountSid": ACCOUNT, "callSid": CALL},
    "streamSid": STREAM,
}


def _parse(obj: object) -> tw.TwilioMessage:
    return tw.parse(json.dumps(obj))


def test_connected() -> None:
    assert _parse(CONNECTED) == tw.Connected(protocol="Call")


def test_start_with_custom_parameters() -> None:
    msg = _parse(START)
    assert msg == tw.Start(
        stream_sid=STREAM,
        call_sid=CALL,
        account_sid=ACCOUNT,
        custom_parameters={"tenant": "acme", "lead_id": "42"},
        encoding="audio/x-mulaw",
        sample_rate=8000,
    )


def test_start_without_parameters_or_format() -> None:
    body = {
        "event": "start",
        "start": {"callSid": CALL, "streamSid": STREAM, "customParameters": {}},
    }
    msg = _parse(body)
    assert isinstance(msg, tw.Start)
    assert msg.custom_parameters == {}
    assert msg.account_sid == ""
    assert (msg.encoding, msg.sample_rate) == ("audio/x-mulaw", 8000)


def test_start_stream_sid_falls_back_to_top_level() -> None:
    body = json.loads(json.dumps(START))
    del body["start"]["streamSid"]
    msg = _parse(body)
    assert isinstance(msg, tw.Start)
    assert msg.stream_sid == STREAM


def test_start_parameters_stringified() -> None:
    body = json.loads(json.dumps(START))
    body["start"]["customParameters"] = {"n": 42}
    msg = _parse(body)
    assert isinstance(msg, tw.Start)
    assert msg.custom_parameters == {"n": "42"}


def test_media() -> None:
    msg = _parse(MEDIA)
    assert msg == tw.Media(payload=AUDIO, timestamp_ms=52, chunk=1)


def test_media_real_capture_payload() -> None:
    body = json.loads(json.dumps(MEDIA))
    body["media"]["payload"] = "/v7+/f39/v7+"
    msg = _parse(body)
    assert isinstance(msg, tw.Media)
    assert msg.payload == bytes([0xFE, 0xFE, 0xFE, 0xFD, 0xFD, 0xFD, 0xFE, 0xFE, 0xFE])


def test_mark_dtmf_stop() -> None:
    assert _parse(MARK) == tw.Mark(name="utt-7")
    assert _parse(DTMF) == tw.Dtmf(digit="5")
    assert _parse(STOP) == tw.Stop()


def test_unknown_event() -> None:
    assert _parse({"event": "transcription", "x": 1}) == tw.Unknown(event="transcription")


def test_parse_accepts_frame_at_limit() -> None:
    frame = json.dumps({"event": "future", "pad": ""})
    frame = frame[:-2] + "x" * (tw.MAX_FRAME_CHARS - len(frame)) + '"}'
    assert len(frame) == tw.MAX_FRAME_CHARS
    assert tw.parse(frame) == tw.Unknown(event="future")


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b'{"event": "stop"}', "binary frames are not part of the Media Streams protocol"),
        ('{"event": "x", "p": "' + "a" * tw.MAX_FRAME_CHARS + '"}', "frame too large"),
        ("not json", "frame is not JSON"),
        ("", "frame is not JSON"),
        ('["event"]', "frame has no 'event'"),
        ('{"streamSid": "MZ"}', "frame has no 'event'"),
        ('{"event": 5}', "frame has no 'event'"),
        (
            '{"event": "media", "media": {"payload": "!!!notbase64"}}',
            "media payload is not valid base64",
        ),
        ('{"event": "media", "media": {"payload": 12}}', "media payload is not valid base64"),
        ('{"event": "media"}', "'media' message without 'media' object"),
        ('{"event": "media", "media": {"payload": "", "chunk": "x"}}', "bad media chunk"),
        ('{"event": "media", "media": {"payload": "", "timestamp": null}}', "bad media timestamp"),
        ('{"event": "start", "start": {"streamSid": "MZ1"}}', "start without callSid/streamSid"),
        ('{"event": "start", "start": {"callSid": "CA1"}}', "start without callSid/streamSid"),
        (
            '{"event": "start", "start": {"callSid": "CA1", "streamSid": "MZ", '
            '"customParameters": ["a"]}}',
            "malformed start message",
        ),
        (
            '{"event": "start", "start": {"callSid": "CA1", "streamSid": "MZ", '
            '"mediaFormat": {"sampleRate": "fast"}}}',
            "bad sampleRate",
        ),
        ('{"event": "start"}', "'start' message without 'start' object"),
        ('{"event": "mark", "mark": "utt"}', "'mark' message without 'mark' object"),
        ('{"event": "dtmf"}', "'dtmf' message without 'dtmf' object"),
    ],
)
def test_protocol_errors(frame: str | bytes, reason: str) -> None:
    with pytest.raises(tw.ProtocolError) as info:
        tw.parse(frame)
    assert str(info.value) == reason
    assert len(str(info.value).encode()) <= 123  # fits a WebSocket close reason


def test_media_message() -> None:
    out = json.loads(tw.media_message(STREAM, b"\xff\x7f\x00"))
    assert out == {"event": "media", "streamSid": STREAM, "media": {"payload": "/38A"}}
    assert base64.b64decode(out["media"]["payload"]) == b"\xff\x7f\x00"


def test_mark_message() -> None:
    out = json.loads(tw.mark_message(STREAM, "t3-s1"))
    assert out == {"event": "mark", "streamSid": STREAM, "mark": {"name": "t3-s1"}}


def test_clear_message() -> None:
    assert json.loads(tw.clear_message(STREAM)) == {"event": "clear", "streamSid": STREAM}


def test_outbound_messages_are_text_and_parse_back() -> None:
    media = tw.media_message(STREAM, AUDIO)
    assert isinstance(media, str)
    assert tw.parse(media) == tw.Media(payload=AUDIO, timestamp_ms=0, chunk=0)
    assert tw.parse(tw.mark_message(STREAM, "m")) == tw.Mark(name="m")
    assert tw.parse(tw.clear_message(STREAM)) == tw.Unknown(event="clear")
