"""Twilio Media Streams parsing and outbound builders, with the documented JSON shapes."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

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


def test_start_without_parameters() -> None:
    body = {
        "event": "start",
        "start": {
            "callSid": CALL,
            "streamSid": STREAM,
            "mediaFormat": START["start"]["mediaFormat"],
        },  # type: ignore[index]
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


def test_media() -> None:
    msg = _parse(MEDIA)
    assert msg == tw.Media(payload=AUDIO, timestamp_ms=52, chunk=1)


def test_media_of_several_frames() -> None:
    body = json.loads(json.dumps(MEDIA))
    audio = AUDIO * tw.MAX_MEDIA_FRAMES
    body["media"]["payload"] = base64.b64encode(audio).decode()
    assert _parse(body) == tw.Media(payload=audio, timestamp_ms=52, chunk=1)


def test_dtmf_digits() -> None:
    for digit in "0123456789*#ABCD":
        body = json.loads(json.dumps(DTMF))
        body["dtmf"]["digit"] = digit
        assert _parse(body) == tw.Dtmf(digit=digit)


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


def _with(base: dict[str, object], path: str, value: object) -> str:
    """`base` as JSON with the value at dotted `path` replaced (deleted for DELETE)."""
    body = json.loads(json.dumps(base))
    *parents, leaf = path.split(".")
    node = body
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[leaf]
    elif isinstance(value, Raw):
        node[leaf] = "@RAW@"
        return json.dumps(body).replace('"@RAW@"', value.text)
    else:
        node[leaf] = value
    return json.dumps(body)


DELETE = object()


@dataclass(frozen=True)
class Raw:
    """JSON text spliced in as is (json.dumps itself recurses on deep nesting)."""

    text: str


def _with_obj(base: dict[str, object], key: str) -> dict[str, object]:
    """`base` without its top-level `key`."""
    return {k: v for k, v in base.items() if k != key}


DEEP = Raw('{"k": ' * 1000 + '"x"' + "}" * 1000)
"""customParameters value nested 1,000 deep (the RecursionError of issue 12)."""
B64 = base64.b64encode
POLICY, INVALID, TOO_BIG = tw.CLOSE_POLICY, tw.CLOSE_INVALID_DATA, tw.CLOSE_TOO_BIG
FORMAT_REASON = "unsupported mediaFormat: need audio/x-mulaw, 8000 Hz, 1 channel"
SID_REASON = "start without a valid callSid (CA + 32 hex)"

REJECTIONS: list[tuple[str, str | bytes, int, str]] = [
    # (id, frame, close code, reason)
    (
        "binary",
        b'{"event": "stop"}',
        tw.CLOSE_UNSUPPORTED,
        "binary frames are not part of the Media Streams protocol",
    ),
    (
        "too-large",
        '{"event": "x", "p": "' + "a" * tw.MAX_FRAME_CHARS + '"}',
        TOO_BIG,
        "frame too large",
    ),
    ("45kb-media", _with(MEDIA, "media.payload", "A" * 45_000), TOO_BIG, "frame too large"),
    ("not-json", "not json", INVALID, "frame is not JSON"),
    ("empty", "", INVALID, "frame is not JSON"),
    ("too-deep-for-json", "[" * 2000 + "]" * 2000, INVALID, "frame is not JSON"),
    ("array", '["event"]', POLICY, "frame has no 'event'"),
    ("no-event", '{"streamSid": "MZ"}', POLICY, "frame has no 'event'"),
    ("event-number", '{"event": 5}', POLICY, "frame has no 'event'"),
    ("event-object", '{"event": {"a": 1}}', POLICY, "frame has no 'event'"),
    (
        "bad-base64",
        _with(MEDIA, "media.payload", "!!!notbase64"),
        INVALID,
        "media payload is not valid base64",
    ),
    (
        "payload-number",
        _with(MEDIA, "media.payload", 12),
        INVALID,
        "media payload is not valid base64",
    ),
    (
        "payload-missing",
        _with(MEDIA, "media.payload", DELETE),
        INVALID,
        "media payload is not valid base64",
    ),
    (
        "payload-empty",
        _with(MEDIA, "media.payload", ""),
        INVALID,
        "media payload of 0 bytes is not whole 160-byte frames",
    ),
    (
        "payload-161",
        _with(MEDIA, "media.payload", B64(AUDIO + b"x").decode()),
        INVALID,
        "media payload of 161 bytes is not whole 160-byte frames",
    ),
    (
        "payload-9",
        _with(MEDIA, "media.payload", "/v7+/f39/v7+"),
        INVALID,
        "media payload of 9 bytes is not whole 160-byte frames",
    ),
    (
        "payload-9-frames",
        _with(MEDIA, "media.payload", B64(AUDIO * 9).decode()),
        TOO_BIG,
        "media payload too large",
    ),
    (
        "payload-8000",
        _with(MEDIA, "media.payload", B64(b"\xff" * 8000).decode()),
        TOO_BIG,
        "media payload too large",
    ),
    ("no-media-object", '{"event": "media"}', POLICY, "'media' message without 'media' object"),
    (
        "media-list",
        '{"event": "media", "media": []}',
        POLICY,
        "'media' message without 'media' object",
    ),
    ("chunk-text", _with(MEDIA, "media.chunk", "x"), POLICY, "bad media chunk"),
    ("chunk-negative", _with(MEDIA, "media.chunk", "-1"), POLICY, "bad media chunk"),
    ("chunk-huge", _with(MEDIA, "media.chunk", "9" * 5000), POLICY, "bad media chunk"),
    ("chunk-float", _with(MEDIA, "media.chunk", 1.5), POLICY, "bad media chunk"),
    ("chunk-bool", _with(MEDIA, "media.chunk", True), POLICY, "bad media chunk"),
    ("timestamp-null", _with(MEDIA, "media.timestamp", None), POLICY, "bad media timestamp"),
    (
        "timestamp-superscript",
        _with(MEDIA, "media.timestamp", "\u00b2"),
        POLICY,
        "bad media timestamp",
    ),
    ("start-no-object", '{"event": "start"}', POLICY, "'start' message without 'start' object"),
    ("no-call-sid", _with(START, "start.callSid", DELETE), POLICY, SID_REASON),
    ("short-call-sid", _with(START, "start.callSid", "CA1"), POLICY, SID_REASON),
    ("call-sid-not-hex", _with(START, "start.callSid", "CA" + "z" * 32), POLICY, SID_REASON),
    ("call-sid-too-long", _with(START, "start.callSid", CALL + "0"), POLICY, SID_REASON),
    ("call-sid-injection", _with(START, "start.callSid", CALL + "\n"), POLICY, SID_REASON),
    ("call-sid-object", _with(START, "start.callSid", {"a": CALL}), POLICY, SID_REASON),
    (
        "no-stream-sid",
        _with(_with_obj(START, "streamSid"), "start.streamSid", DELETE),
        POLICY,
        "start without a valid streamSid",
    ),
    (
        "stream-sid-long",
        _with(START, "start.streamSid", "MZ" + "0" * 100),
        POLICY,
        "start without a valid streamSid",
    ),
    (
        "account-sid",
        _with(START, "start.accountSid", "AC1"),
        POLICY,
        "start with a malformed accountSid",
    ),
    (
        "params-list",
        _with(START, "start.customParameters", ["a"]),
        POLICY,
        "customParameters is not an object",
    ),
    (
        "params-number",
        _with(START, "start.customParameters", {"n": 42}),
        POLICY,
        "customParameters values must be strings (no nesting)",
    ),
    (
        "params-nested-1000",
        _with(START, "start.customParameters.token", DEEP),
        POLICY,
        "customParameters values must be strings (no nesting)",
    ),
    (
        "params-too-many",
        _with(
            START, "start.customParameters", {f"p{i}": "v" for i in range(tw.MAX_PARAMETERS + 1)}
        ),
        POLICY,
        f"more than {tw.MAX_PARAMETERS} customParameters",
    ),
    (
        "params-long-value",
        _with(START, "start.customParameters", {"token": "v" * (tw.MAX_PARAMETER_VALUE + 1)}),
        POLICY,
        "customParameters value too long",
    ),
    (
        "params-long-name",
        _with(START, "start.customParameters", {"n" * (tw.MAX_PARAMETER_NAME + 1): "v"}),
        POLICY,
        "customParameters name empty or too long",
    ),
    (
        "params-empty-name",
        _with(START, "start.customParameters", {"": "v"}),
        POLICY,
        "customParameters name empty or too long",
    ),
    ("no-format", _with(START, "start.mediaFormat", DELETE), POLICY, FORMAT_REASON),
    ("format-pcm", _with(START, "start.mediaFormat.encoding", "audio/l16"), POLICY, FORMAT_REASON),
    ("format-16k", _with(START, "start.mediaFormat.sampleRate", 16000), POLICY, FORMAT_REASON),
    (
        "format-rate-text",
        _with(START, "start.mediaFormat.sampleRate", "8000"),
        POLICY,
        FORMAT_REASON,
    ),
    ("format-stereo", _with(START, "start.mediaFormat.channels", 2), POLICY, FORMAT_REASON),
    ("format-list", _with(START, "start.mediaFormat", []), POLICY, FORMAT_REASON),
    (
        "mark-text",
        '{"event": "mark", "mark": "utt"}',
        POLICY,
        "'mark' message without 'mark' object",
    ),
    ("mark-name-object", _with(MARK, "mark.name", DEEP), POLICY, "bad mark name"),
    ("mark-name-long", _with(MARK, "mark.name", "m" * 129), POLICY, "bad mark name"),
    ("dtmf-no-object", '{"event": "dtmf"}', POLICY, "'dtmf' message without 'dtmf' object"),
    ("dtmf-two", _with(DTMF, "dtmf.digit", "00"), POLICY, "bad DTMF digit (one of 0-9 * # A-D)"),
    ("dtmf-letter", _with(DTMF, "dtmf.digit", "E"), POLICY, "bad DTMF digit (one of 0-9 * # A-D)"),
    ("dtmf-number", _with(DTMF, "dtmf.digit", 0), POLICY, "bad DTMF digit (one of 0-9 * # A-D)"),
    ("dtmf-empty", _with(DTMF, "dtmf.digit", ""), POLICY, "bad DTMF digit (one of 0-9 * # A-D)"),
]


@pytest.mark.parametrize(
    ("frame", "code", "reason"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS]
)
def test_protocol_errors(frame: str | bytes, code: int, reason: str) -> None:
    with pytest.raises(tw.ProtocolError) as info:
        tw.parse(frame)
    assert (info.value.code, str(info.value)) == (code, reason)
    assert len(str(info.value).encode()) <= 123  # fits a WebSocket close reason


def test_unknown_event_name_is_bounded() -> None:
    assert _parse({"event": "e" * 5000}) == tw.Unknown(event="e" * tw.MAX_EVENT_NAME)


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
