"""The Deepgram Aura `/v1/speak` WebSocket protocol as pure functions: text frames in, typed
client messages out; server messages built as JSON text. No I/O here.

Wire contract: /work/shared/protocols/deepgram-aura-tts.md.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_SPEAK_CHARS = 2000
"""Longest `Speak` text accepted in one message (Deepgram documents ~2000)."""

VALID_RATES: dict[str, tuple[int, ...]] = {
    "mulaw": (8000, 16000),
    "linear16": (8000, 16000, 24000, 32000, 48000),
}
DEFAULT_RATE = {"mulaw": 8000, "linear16": 24000}
DEFAULT_ENCODING = "linear16"


@dataclass(frozen=True)
class Speak:
    """Append text to the buffer."""

    text: str


@dataclass(frozen=True)
class Flush:
    """Synthesise everything buffered now; answer with `Flushed`."""


@dataclass(frozen=True)
class Clear:
    """Drop buffered text and unsent audio; answer with `Cleared`."""


@dataclass(frozen=True)
class Close:
    """Close the socket now (1000)."""


ClientMessage = Speak | Flush | Clear | Close


class ProtocolError(ValueError):
    """A message this server cannot accept: the socket closes with `code` and the message."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class AudioFormat:
    """What the client asked for in the query string."""

    model: str
    encoding: str
    sample_rate: int

    @property
    def bytes_per_sample(self) -> int:
        return 1 if self.encoding == "mulaw" else 2

    @property
    def frame_bytes(self) -> int:
        """Bytes in one 20 ms frame (160 for µ-law 8 kHz: one Twilio media frame)."""
        return self.sample_rate // 50 * self.bytes_per_sample


def parse_binary() -> ProtocolError:
    """A binary frame from the client is never valid on /v1/speak."""
    return ProtocolError(1003, "binary frames are not accepted on /v1/speak")


def parse_text(text: str) -> ClientMessage:
    """One client text frame -> one message, or ProtocolError (close 1008 with the reason)."""
    try:
        payload: Any = json.loads(text)
    except json.JSONDecodeError:
        raise ProtocolError(1008, "DATA-0001: message is not JSON") from None
    if not isinstance(payload, dict):
        raise ProtocolError(1008, "DATA-0001: message must be a JSON object")
    kind = payload.get("type")
    if kind == "Speak":
        spoken = payload.get("text")
        if not isinstance(spoken, str):
            raise ProtocolError(1008, "DATA-0001: Speak needs a string 'text'")
        if len(spoken) > MAX_SPEAK_CHARS:
            raise ProtocolError(1009, f"DATA-0002: Speak text over {MAX_SPEAK_CHARS} characters")
        return Speak(spoken)
    if kind == "Flush":
        return Flush()
    if kind == "Clear":
        return Clear()
    if kind == "Close":
        return Close()
    raise ProtocolError(1008, f"DATA-0001: unsupported message type {str(kind)[:40]!r}")


def parse_query(query: Mapping[str, str], default_model: str) -> AudioFormat:
    """`model`, `encoding`, `sample_rate` from the handshake query, or ProtocolError (HTTP 400:
    the code is then the HTTP status)."""
    model = query.get("model") or default_model
    encoding = query.get("encoding") or DEFAULT_ENCODING
    if encoding not in VALID_RATES:
        raise ProtocolError(400, f"Unsupported encoding {encoding[:20]!r} (mulaw|linear16)")
    raw_rate = query.get("sample_rate")
    try:
        rate = int(raw_rate) if raw_rate else DEFAULT_RATE[encoding]
    except ValueError:
        raise ProtocolError(400, "sample_rate must be an integer") from None
    if rate not in VALID_RATES[encoding]:
        raise ProtocolError(400, f"Invalid sample_rate {rate} for encoding {encoding}")
    return AudioFormat(model=model, encoding=encoding, sample_rate=rate)


def model_uuid(model_name: str) -> str:
    """A stable uuid for a local voice (Deepgram reports one per model)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"frontdesk-speech:{model_name}"))


def error_code(status: int) -> str:
    """Deepgram's `err_code` for an HTTP refusal."""
    return {401: "INVALID_AUTH", 503: "Unavailable"}.get(status, "Bad Request")


def metadata(request_id: str, model_name: str, model_version: str) -> str:
    """The first server message on every socket."""
    return json.dumps(
        {
            "type": "Metadata",
            "request_id": request_id,
            "model_name": model_name,
            "model_version": model_version,
            "model_uuid": model_uuid(model_name),
            "additional_model_uuids": [],
        }
    )


def flushed(sequence_id: int) -> str:
    """All audio of one Flush has been sent."""
    return json.dumps({"type": "Flushed", "sequence_id": sequence_id})


def cleared(sequence_id: int) -> str:
    """Buffered text and unsent audio were dropped."""
    return json.dumps({"type": "Cleared", "sequence_id": sequence_id})


def warning(description: str, code: str) -> str:
    """A non-fatal problem (e.g. a sentence the voice could not say)."""
    return json.dumps({"type": "Warning", "description": description, "code": code})
