"""Twilio Media Streams wire protocol: text frames in, typed messages out (no I/O).

Anything malformed raises ``ProtocolError``: a WebSocket close code and a reason (the message).
Only the documented shapes pass (shared/protocols/twilio-media-streams.md): strings are never
``str()``-ed from other JSON types (a nested object would recurse), sizes are bounded before
any decoding, and orjson refuses nesting deeper than 1024 levels.
JSON goes through orjson: a media frame is parsed 50 times a second per call.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

MAX_FRAME_CHARS = 16 * 1024
"""Largest inbound text frame accepted (a 20 ms media frame is ~300 chars, `start` < 10 k)."""
FRAME_BYTES = 160
"""20 ms of µ-law 8 kHz."""
MAX_MEDIA_FRAMES = 8
"""Most 20 ms frames one `media` message may carry (Twilio sends exactly one)."""
MAX_PAYLOAD_B64 = 4 * -(-FRAME_BYTES * MAX_MEDIA_FRAMES // 3)
"""Base64 length of the largest payload accepted (checked before decoding)."""
MAX_PARAMETERS = 16
"""Most `customParameters` a `start` may carry."""
MAX_PARAMETER_NAME = 64
MAX_PARAMETER_VALUE = 512
MAX_MARK_NAME = 128
MAX_COUNTER_DIGITS = 12
"""`chunk` / `timestamp` are decimal strings; 12 digits is 30 years of milliseconds."""
MAX_EVENT_NAME = 40
"""An unknown event's name is kept (for the log) up to this length."""
DTMF_DIGITS = frozenset("0123456789*#ABCD")
MULAW = "audio/x-mulaw"
SAMPLE_RATE = 8000

CLOSE_UNSUPPORTED = 1003
"""Binary frame: a data type this endpoint does not accept."""
CLOSE_INVALID_DATA = 1007
"""Data inconsistent with its type: not JSON, bad base64, audio not in 160-byte frames."""
CLOSE_POLICY = 1008
"""Anything else the protocol does not allow (shape, identifiers, order, tokens)."""
CLOSE_TOO_BIG = 1009
"""A frame larger than any the protocol sends."""

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
ACCOUNT_SID = re.compile(r"(AC[0-9a-fA-F]{32})?")
STREAM_SID = re.compile(r"[A-Za-z0-9-]{1,64}")  # MZ + 32 hex (older streams: a UUID)


class ProtocolError(ValueError):
    """The peer broke the protocol: close with `code`; the message is the close reason
    (<= 123 bytes)."""

    def __init__(self, reason: str, code: int = CLOSE_POLICY) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class Connected:
    """First message of a stream."""

    protocol: str


@dataclass(frozen=True)
class Start:
    """Stream metadata, exactly once."""

    stream_sid: str
    call_sid: str
    account_sid: str
    custom_parameters: dict[str, str] = field(default_factory=dict)
    encoding: str = MULAW
    sample_rate: int = SAMPLE_RATE


@dataclass(frozen=True)
class Media:
    """20 ms of caller audio (µ-law bytes; a multiple of 160, at most 8 frames)."""

    payload: bytes
    timestamp_ms: int
    chunk: int


@dataclass(frozen=True)
class Mark:
    """Twilio finished playing (or cleared) the audio before our mark."""

    name: str


@dataclass(frozen=True)
class Dtmf:
    """A key press."""

    digit: str


@dataclass(frozen=True)
class Stop:
    """The call ended."""


@dataclass(frozen=True)
class Unknown:
    """An event type this build does not know (Twilio adds events over time)."""

    event: str


TwilioMessage = Connected | Start | Media | Mark | Dtmf | Stop | Unknown


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if type(value) is not dict:
        raise ProtocolError(f"'{key}' message without '{key}' object")
    return value


def _counter(value: Any, what: str) -> int:
    """A non-negative counter Twilio sends as a decimal string (a JSON integer is allowed)."""
    if type(value) is str and len(value) <= MAX_COUNTER_DIGITS:
        try:
            number = int(value)
        except ValueError:
            number = -1
    elif type(value) is int:
        number = value if value < 10**MAX_COUNTER_DIGITS else -1
    else:
        number = -1
    if number < 0:
        raise ProtocolError(f"bad {what}")
    return number


def _text(value: Any, limit: int, what: str) -> str:
    if type(value) is not str or len(value) > limit:
        raise ProtocolError(f"bad {what}")
    return value


def _media(data: dict[str, Any]) -> Media:
    media = _obj(data, "media")
    encoded = media.get("payload")
    if type(encoded) is not str:
        raise ProtocolError("media payload is not valid base64", CLOSE_INVALID_DATA)
    if len(encoded) > MAX_PAYLOAD_B64:
        raise ProtocolError("media payload too large", CLOSE_TOO_BIG)
    try:
        payload = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError("media payload is not valid base64", CLOSE_INVALID_DATA) from exc
    if not payload or len(payload) % FRAME_BYTES:
        raise ProtocolError(
            f"media payload of {len(payload)} bytes is not whole 160-byte frames",
            CLOSE_INVALID_DATA,
        )
    return Media(
        payload=payload,
        timestamp_ms=_counter(media.get("timestamp", "0"), "media timestamp"),
        chunk=_counter(media.get("chunk", "0"), "media chunk"),
    )


def _parameters(value: Any) -> dict[str, str]:
    """`customParameters`: a flat object of at most 16 short strings."""
    if value is None:
        return {}
    if type(value) is not dict:
        raise ProtocolError("customParameters is not an object")
    if len(value) > MAX_PARAMETERS:
        raise ProtocolError(f"more than {MAX_PARAMETERS} customParameters")
    for name, text in value.items():
        if not 0 < len(name) <= MAX_PARAMETER_NAME:
            raise ProtocolError("customParameters name empty or too long")
        if type(text) is not str:
            raise ProtocolError("customParameters values must be strings (no nesting)")
        if len(text) > MAX_PARAMETER_VALUE:
            raise ProtocolError("customParameters value too long")
    return value


def _check_format(fmt: Any) -> None:
    if (
        type(fmt) is not dict
        or fmt.get("encoding") != MULAW
        or type(fmt.get("sampleRate")) is not int
        or fmt.get("sampleRate") != SAMPLE_RATE
        or type(fmt.get("channels", 1)) is not int
        or fmt.get("channels", 1) != 1
    ):
        raise ProtocolError("unsupported mediaFormat: need audio/x-mulaw, 8000 Hz, 1 channel")


def _start(data: dict[str, Any]) -> Start:
    start = _obj(data, "start")
    call_sid = start.get("callSid")
    if type(call_sid) is not str or not CALL_SID.fullmatch(call_sid):
        raise ProtocolError("start without a valid callSid (CA + 32 hex)")
    stream_sid = start.get("streamSid") or data.get("streamSid")
    if type(stream_sid) is not str or not STREAM_SID.fullmatch(stream_sid):
        raise ProtocolError("start without a valid streamSid")
    account_sid = start.get("accountSid", "")
    if type(account_sid) is not str or not ACCOUNT_SID.fullmatch(account_sid):
        raise ProtocolError("start with a malformed accountSid")
    params = _parameters(start.get("customParameters"))
    _check_format(start.get("mediaFormat"))
    return Start(
        stream_sid=stream_sid,
        call_sid=call_sid,
        account_sid=account_sid,
        custom_parameters=dict(params),
    )


def _dtmf(data: dict[str, Any]) -> Dtmf:
    digit = _obj(data, "dtmf").get("digit")
    if type(digit) is not str or digit not in DTMF_DIGITS:
        raise ProtocolError("bad DTMF digit (one of 0-9 * # A-D)")
    return Dtmf(digit=digit)


def parse(frame: str | bytes) -> TwilioMessage:
    """One inbound frame as a typed message; raises ProtocolError (a close code and reason)
    and nothing else."""
    if type(frame) is not str:
        raise ProtocolError(
            "binary frames are not part of the Media Streams protocol", CLOSE_UNSUPPORTED
        )
    if len(frame) > MAX_FRAME_CHARS:
        raise ProtocolError("frame too large", CLOSE_TOO_BIG)
    try:
        data = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("frame is not JSON", CLOSE_INVALID_DATA) from exc
    if type(data) is not dict:
        raise ProtocolError("frame has no 'event'")
    event = data.get("event")
    if event == "media":
        return _media(data)
    if type(event) is not str:
        raise ProtocolError("frame has no 'event'")
    if event == "start":
        return _start(data)
    if event == "mark":
        return Mark(name=_text(_obj(data, "mark").get("name"), MAX_MARK_NAME, "mark name"))
    if event == "dtmf":
        return _dtmf(data)
    if event == "stop":
        return Stop()
    if event == "connected":
        protocol = data.get("protocol", "")
        return Connected(protocol=protocol[:MAX_EVENT_NAME] if type(protocol) is str else "")
    return Unknown(event=event[:MAX_EVENT_NAME])


def _dumps(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def media_message(stream_sid: str, audio: bytes) -> str:
    """Outbound audio for Twilio to play."""
    payload = base64.b64encode(audio).decode("ascii")
    return _dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark_message(stream_sid: str, name: str) -> str:
    """A mark Twilio echoes once the audio before it has played."""
    return _dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    """Drop Twilio's queued audio (barge-in)."""
    return _dumps({"event": "clear", "streamSid": stream_sid})
