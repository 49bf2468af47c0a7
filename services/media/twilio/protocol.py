"""Twilio Media Streams wire protocol: text frames in, typed messages out (no I/O).

Anything malformed raises ``ProtocolError`` whose message is the WebSocket close reason.
JSON goes through orjson: a media frame is parsed 50 times a second per call.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import orjson

MAX_FRAME_CHARS = 64 * 1024
"""Largest inbound text frame accepted (a 20 ms media frame is ~300 chars)."""


class ProtocolError(ValueError):
    """The peer broke the protocol; the message is a close reason (<= 123 bytes)."""


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
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000


@dataclass(frozen=True)
class Media:
    """20 ms of caller audio (µ-law bytes)."""

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
    if not isinstance(value, dict):
        raise ProtocolError(f"'{key}' message without '{key}' object")
    return value


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"bad {what}") from exc


def parse(frame: str | bytes) -> TwilioMessage:
    """One inbound frame as a typed message."""
    if isinstance(frame, bytes):
        raise ProtocolError("binary frames are not part of the Media Streams protocol")
    if len(frame) > MAX_FRAME_CHARS:
        raise ProtocolError("frame too large")
    try:
        data = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("frame is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        raise ProtocolError("frame has no 'event'")
    event: str = data["event"]
    if event == "media":
        media = _obj(data, "media")
        try:
            payload = base64.b64decode(media.get("payload", ""), validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise ProtocolError("media payload is not valid base64") from exc
        return Media(
            payload=payload,
            timestamp_ms=_int(media.get("timestamp", 0), "media timestamp"),
            chunk=_int(media.get("chunk", 0), "media chunk"),
        )
    if event == "start":
        start = _obj(data, "start")
        fmt = start.get("mediaFormat") or {}
        params = start.get("customParameters") or {}
        if not isinstance(params, dict) or not isinstance(fmt, dict):
            raise ProtocolError("malformed start message")
        call_sid = start.get("callSid")
        stream_sid = start.get("streamSid") or data.get("streamSid")
        if not isinstance(call_sid, str) or not isinstance(stream_sid, str):
            raise ProtocolError("start without callSid/streamSid")
        return Start(
            stream_sid=stream_sid,
            call_sid=call_sid,
            account_sid=str(start.get("accountSid", "")),
            custom_parameters={str(k): str(v) for k, v in params.items()},
            encoding=str(fmt.get("encoding", "audio/x-mulaw")),
            sample_rate=_int(fmt.get("sampleRate", 8000), "sampleRate"),
        )
    if event == "mark":
        return Mark(name=str(_obj(data, "mark").get("name", "")))
    if event == "dtmf":
        return Dtmf(digit=str(_obj(data, "dtmf").get("digit", "")))
    if event == "stop":
        return Stop()
    if event == "connected":
        return Connected(protocol=str(data.get("protocol", "")))
    return Unknown(event=event)


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
