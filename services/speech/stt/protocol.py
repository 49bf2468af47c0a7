"""The Deepgram live STT wire protocol, as the speech service speaks it (pure: no I/O).

Wire contract: /work/shared/protocols/deepgram-live-stt.md. `listen_options` validates the
`/v1/listen` query (a `QueryError` becomes HTTP 400 before the upgrade), `control` parses one
client text frame, and the `*_message` builders make the server's JSON messages.

What this server accepts: raw `mulaw` at 8000 Hz mono, the audio Twilio sends and media forwards
untouched. Other encodings and rates are refused with a 400 naming what is accepted (the VAD and
the resampler work on 8 kHz µ-law).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

DEFAULT_ENDPOINTING_MS = 10  # Deepgram's default
MIN_ENDPOINTING_MS = 32  # one VAD window
NO_ENDPOINTING_CUT_MS = 500  # with endpointing=false an utterance still ends on this silence
MAX_KEYTERMS = 100
MAX_KEYTERM_CHARS = 100
CONTROL_TYPES = frozenset({"KeepAlive", "Finalize", "CloseStream"})


class QueryError(ValueError):
    """A `/v1/listen` query parameter is invalid (HTTP 400 before the upgrade)."""


class ProtocolError(ValueError):
    """A client frame that breaks the protocol (the socket closes with the reason)."""


@dataclass(frozen=True)
class ModelInfo:
    """What `metadata.model_info` reports."""

    name: str
    version: str
    arch: str
    uuid: str


@dataclass(frozen=True)
class ListenOptions:
    """One socket's validated query."""

    model: str
    interim_results: bool
    endpointing_ms: int | None  # None: endpointing=false (no speech_final)
    utterance_end_ms: int | None
    vad_events: bool
    keyterms: tuple[str, ...]
    tags: tuple[str, ...]
    request_id: str

    @property
    def silence_ms(self) -> int:
        """Silence (VAD) that closes an utterance."""
        if self.endpointing_ms is None:
            return NO_ENDPOINTING_CUT_MS
        return max(self.endpointing_ms, MIN_ENDPOINTING_MS)


def _bool(query: Mapping[str, str], name: str, default: bool) -> bool:
    raw = query.get(name)
    if raw is None:
        return default
    if raw not in ("true", "false"):
        raise QueryError(f"{name} must be true or false, not {raw!r}")
    return raw == "true"


def _int(query: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"{name} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise QueryError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _keyterms(keyterm: Sequence[str], keywords: Sequence[str]) -> tuple[str, ...]:
    """`keyterm=...` as given, `keywords=word:boost` without the boost; bounded."""
    terms = [t.strip() for t in keyterm]
    terms += [k.rsplit(":", 1)[0].strip() if ":" in k else k.strip() for k in keywords]
    terms = [t for t in terms if t]
    if len(terms) > MAX_KEYTERMS:
        raise QueryError(f"at most {MAX_KEYTERMS} keyterm/keywords, not {len(terms)}")
    if any(len(t) > MAX_KEYTERM_CHARS for t in terms):
        raise QueryError(f"a keyterm is longer than {MAX_KEYTERM_CHARS} characters")
    return tuple(dict.fromkeys(terms))


def listen_options(
    query: Mapping[str, str], lists: Mapping[str, Sequence[str]], request_id: str
) -> ListenOptions:
    """Validate a `/v1/listen` query; `lists` holds the repeated parameters by name."""
    encoding = query.get("encoding")
    sample_rate = query.get("sample_rate")
    if encoding != "mulaw" or sample_rate != "8000":
        raise QueryError(
            "this server accepts encoding=mulaw&sample_rate=8000 (Twilio audio), "
            f"not encoding={encoding!r} sample_rate={sample_rate!r}"
        )
    if query.get("channels", "1") != "1" or _bool(query, "multichannel", False):
        raise QueryError("this server transcribes one channel (channels=1)")
    raw_ep = query.get("endpointing")
    endpointing: int | None
    if raw_ep == "false":
        endpointing = None
    elif raw_ep in (None, "true"):
        endpointing = DEFAULT_ENDPOINTING_MS
    else:
        endpointing = _int(query, "endpointing", 0, 60_000)
    for name in ("punctuate", "smart_format", "numerals", "profanity_filter", "diarize"):
        _bool(query, name, False)  # accepted; Whisper punctuates and formats by itself
    return ListenOptions(
        model=query.get("model") or "whisper-tiny.en",
        interim_results=_bool(query, "interim_results", False),
        endpointing_ms=endpointing,
        utterance_end_ms=_int(query, "utterance_end_ms", 0, 60_000),
        vad_events=_bool(query, "vad_events", False),
        keyterms=_keyterms(lists.get("keyterm", ()), lists.get("keywords", ())),
        tags=tuple(lists.get("tag", ())),
        request_id=request_id,
    )


def control(text: str) -> str:
    """The `type` of one client text frame: KeepAlive, Finalize or CloseStream."""
    try:
        message = json.loads(text)
    except ValueError:
        raise ProtocolError("DATA-0001: text frame is not JSON") from None
    kind = message.get("type") if isinstance(message, dict) else None
    if kind not in CONTROL_TYPES:
        raise ProtocolError(f"DATA-0001: unknown control message type {str(kind)[:40]!r}")
    return str(kind)


def _seconds(ms: int) -> float:
    return round(ms / 1000, 3)


def words(text: str, start_ms: int, end_ms: int, confidence: float) -> list[dict[str, Any]]:
    """Word entries for a transcript; times are spread evenly over the utterance (Whisper is
    run without word timestamps, which would cost a second pass)."""
    tokens = text.split()
    if not tokens:
        return []
    step = (end_ms - start_ms) / len(tokens)
    out = []
    for i, token in enumerate(tokens):
        bare = token.strip(".,!?;:\"'()").lower() or token.lower()
        out.append(
            {
                "word": bare,
                "start": _seconds(round(start_ms + i * step)),
                "end": _seconds(round(start_ms + (i + 1) * step)),
                "confidence": confidence,
                "punctuated_word": token,
            }
        )
    return out


def results_message(
    options: ListenOptions,
    model: ModelInfo,
    *,
    text: str,
    confidence: float,
    start_ms: int,
    end_ms: int,
    is_final: bool,
    speech_final: bool,
    from_finalize: bool = False,
) -> dict[str, Any]:
    """A `Results` message for [start_ms, end_ms) of the stream."""
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": _seconds(end_ms - start_ms),
        "start": _seconds(start_ms),
        "is_final": is_final,
        "speech_final": speech_final,
        "from_finalize": from_finalize,
        "channel": {
            "alternatives": [
                {
                    "transcript": text,
                    "confidence": confidence,
                    "words": words(text, start_ms, end_ms, confidence),
                }
            ]
        },
        "metadata": {
            "request_id": options.request_id,
            "model_info": {"name": model.name, "version": model.version, "arch": model.arch},
            "model_uuid": model.uuid,
        },
    }


def speech_started_message(audio_ms: int) -> dict[str, Any]:
    """`SpeechStarted` at voice onset."""
    return {"type": "SpeechStarted", "channel": [0], "timestamp": _seconds(audio_ms)}


def utterance_end_message(last_word_end_ms: int) -> dict[str, Any]:
    """`UtteranceEnd` after a gap of `utterance_end_ms` following the last word."""
    return {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": _seconds(last_word_end_ms)}


def metadata_message(
    options: ListenOptions, model: ModelInfo, audio_ms: int, sha256: str
) -> dict[str, Any]:
    """The summary `Metadata` sent after `CloseStream`, before the close."""
    return {
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": options.request_id,
        "sha256": sha256,
        "created": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "duration": _seconds(audio_ms),
        "channels": 1,
        "models": [model.uuid],
        "model_info": {
            model.uuid: {"name": model.name, "version": model.version, "arch": model.arch}
        },
    }


def new_request_id() -> str:
    """A Deepgram-style request id (`dg-request-id`)."""
    return str(uuid.uuid4())
