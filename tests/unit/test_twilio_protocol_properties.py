"""Property tests of the Twilio Media Streams parser: whatever a peer sends, `parse` returns
a typed message or raises its typed rejection (a close code and a short reason), nothing else."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.media.twilio import protocol as tw

CODES = {tw.CLOSE_UNSUPPORTED, tw.CLOSE_INVALID_DATA, tw.CLOSE_POLICY, tw.CLOSE_TOO_BIG}
MESSAGES = (tw.Connected, tw.Start, tw.Media, tw.Mark, tw.Dtmf, tw.Stop, tw.Unknown)
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["media", "start", "mark", "dtmf", "stop", "connected", "8000", "1"]),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=30,
)
"""Any JSON value (small)."""

VALID = [
    {"event": "connected", "protocol": "Call", "version": "1.0.0"},
    {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": "AC" + "1" * 32,
            "streamSid": "MZ" + "2" * 32,
            "callSid": "CA" + "3" * 32,
            "tracks": ["inbound"],
            "customParameters": {"token": "t"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": "MZ" + "2" * 32,
    },
    {
        "event": "media",
        "media": {
            "track": "inbound",
            "chunk": "1",
            "timestamp": "52",
            "payload": base64.b64encode(bytes(160)).decode(),
        },
    },
    {"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "5"}},
    {"event": "mark", "mark": {"name": "t1-s1"}},
    {"event": "stop", "stop": {"accountSid": "AC" + "1" * 32, "callSid": "CA" + "3" * 32}},
]


def outcome(frame: str | bytes) -> tw.TwilioMessage | tw.ProtocolError:
    """Parse; a rejection is returned (anything else raised fails the test)."""
    try:
        message = tw.parse(frame)
    except tw.ProtocolError as exc:
        assert exc.code in CODES
        assert 0 < len(str(exc).encode()) <= 123
        return exc
    assert isinstance(message, MESSAGES)
    return message


@SETTINGS
@given(st.binary(max_size=2000))
def test_any_binary_frame_is_refused(frame: bytes) -> None:
    result = outcome(frame)
    assert isinstance(result, tw.ProtocolError) and result.code == tw.CLOSE_UNSUPPORTED


@SETTINGS
@given(st.text(max_size=2000))
def test_any_text_frame(frame: str) -> None:
    outcome(frame)


@SETTINGS
@given(JSON)
def test_any_json_value(value: Any) -> None:
    outcome(json.dumps(value))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    return found


@SETTINGS
@given(st.data())
def test_a_valid_message_with_any_field_replaced(data: st.DataObject) -> None:
    message = json.loads(json.dumps(data.draw(st.sampled_from(VALID))))
    path = data.draw(st.sampled_from(_paths(message)))
    node = message
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = data.draw(JSON)
    outcome(json.dumps(message))


@SETTINGS
@given(st.sampled_from(VALID), st.integers(min_value=1, max_value=3000))
def test_nesting_of_any_depth_in_any_message(message: dict[str, Any], depth: int) -> None:
    nested = '{"a": ' * depth + '"x"' + "}" * depth
    text = json.dumps(message)
    outcome(text[:-1] + ', "extra": ' + nested + "}")
    if "start" in message:
        start = json.dumps({**message["start"], "customParameters": {"token": "@"}})
        outcome(text.replace(json.dumps(message["start"]), start).replace('"@"', nested))


@SETTINGS
@given(st.binary(max_size=3000))
def test_media_payload_of_any_size(audio: bytes) -> None:
    frame = json.dumps({"event": "media", "media": {"payload": base64.b64encode(audio).decode()}})
    result = outcome(frame)
    whole = 0 < len(audio) <= tw.FRAME_BYTES * tw.MAX_MEDIA_FRAMES and len(audio) % 160 == 0
    assert isinstance(result, tw.Media) == whole
    if whole:
        assert isinstance(result, tw.Media) and result.payload == audio


def test_every_valid_message_parses() -> None:
    for message in VALID:
        assert isinstance(outcome(json.dumps(message)), MESSAGES)
