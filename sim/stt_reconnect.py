"""STT simulator: dropping a call's socket and resuming its script on a new one.

Audio time across reconnects
----------------------------
Scripts (`POST /sim/listen/script`) are registered in *caller audio time*: ms of caller audio
since the call's media stream started (what the caller simulator counts). A socket's own
clock starts at 0 with its first byte, like Deepgram's, and every timestamp the socket sends
(`start`, `duration`, word times, `SpeechStarted.timestamp`, `UtteranceEnd.last_word_end`) is
in that socket's clock, like Deepgram's.

When media reconnects after a drop it resends the audio it buffered, so the new socket's first
byte is caller audio time X (the drop moment, or earlier if media replays more). Media tells
the socket X with Deepgram's `extra` query parameter, `extra=audio_offset_ms:X` (Deepgram
echoes `extra` in each Results' metadata and otherwise ignores it, so the parameter is harmless
in production), and adds X to the socket's timestamps to get caller audio time back.

The simulator shifts the tag's script by -X for that socket:
* utterances ending at or before X are not scripted again (their audio precedes the socket;
  their finals were due on the old socket);
* an utterance straddling X (the socket starts mid-utterance) keeps only the words spoken after
  X (words are spread evenly over the utterance; a word counts if its middle is at or after
  X), over [0, end - X): like real Deepgram, the new socket transcribes only audio it hears.
  So no words are lost only if media replays its audio since the end of the last final it
  received, not since the drop;
* later utterances keep their timing, shifted by -X.
Without `extra=audio_offset_ms`, X is 0 (a fresh call).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterable
from contextlib import suppress
from typing import Literal, cast

from pydantic import BaseModel, Field

from sim.deepgram_common import QueryError

AUDIO_OFFSET_KEY = "audio_offset_ms"
MAX_AUDIO_OFFSET_MS = 24 * 3600 * 1000
DROP_CLOSE_CODE = 1011
DROP_CLOSE_REASON = "NET-0000"


class DropRequest(BaseModel):
    """`POST /sim/listen/drop`: drop the live socket(s) of one call like a network failure."""

    tag: str = Field(min_length=1, description="Value of the `tag` query param (the CallSid).")
    mode: Literal["close", "abort"] = Field(
        description="close: close frame 1011 NET-0000; abort: TCP reset, no close frame."
    )


class NewStreamRequest(BaseModel):
    """`POST /sim/listen/new-stream`: the call resumes on a new media stream."""

    tag: str = Field(min_length=1, description="Value of the `tag` query param (the CallSid).")


def parse_extras(values: Iterable[str]) -> dict[str, str]:
    """`extra=key:value` query values as a dict (raises QueryError -> HTTP 400)."""
    extras: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition(":")
        if not sep or not key:
            raise QueryError(f"extra must be key:value, got {value!r}")
        extras[key] = rest
    return extras


def audio_offset_ms(extras: dict[str, str]) -> int:
    """Caller audio time of the socket's first byte (0 when not given)."""
    raw = extras.get(AUDIO_OFFSET_KEY)
    if raw is None:
        return 0
    if not raw.isdigit() or int(raw) > MAX_AUDIO_OFFSET_MS:
        raise QueryError(f"extra {AUDIO_OFFSET_KEY} must be an integer 0..{MAX_AUDIO_OFFSET_MS}")
    return int(raw)


def socket_window(start_ms: int, end_ms: int, offset_ms: int) -> tuple[int, int] | None:
    """A caller-time utterance window in the clock of a socket starting at `offset_ms`."""
    if end_ms <= offset_ms:
        return None
    return max(0, start_ms - offset_ms), end_ms - offset_ms


def heard_words(text: str, start_ms: int, end_ms: int, offset_ms: int) -> str:
    """The words of an utterance a socket starting at `offset_ms` hears (all if it started
    before the utterance; those whose middle is at or after `offset_ms` otherwise)."""
    words = text.split()
    if offset_ms <= start_ms or not words:
        return text
    span = (end_ms - start_ms) / len(words)
    kept = [w for i, w in enumerate(words) if start_ms + (i + 0.5) * span >= offset_ms]
    return " ".join(kept)


def _is_transport(obj: object) -> bool:
    """An asyncio transport, or uvloop's (which does not subclass asyncio.Transport)."""
    return isinstance(obj, asyncio.Transport) or (
        callable(getattr(obj, "abort", None)) and callable(getattr(obj, "get_extra_info", None))
    )


def find_transport(send: object, max_depth: int = 4) -> asyncio.Transport | None:
    """The server's TCP transport behind an ASGI `send` (uvicorn's protocol owns it).

    Starlette wraps uvicorn's bound `asgi_send` in closures; ASGI offers no way to abort a
    connection without a close frame, so the simulator looks through those wrappers.
    Works on the asyncio and the uvloop event loop (`python -m sim` runs on uvloop).
    """
    pending: list[tuple[object, int]] = [(send, 0)]
    seen: set[int] = set()
    while pending:
        obj, depth = pending.pop()
        if id(obj) in seen or depth > max_depth:
            continue
        seen.add(id(obj))
        transport = getattr(getattr(obj, "__self__", None), "transport", None)
        if transport is not None and _is_transport(transport):
            return cast(asyncio.Transport, transport)
        for cell in getattr(obj, "__closure__", None) or ():
            with suppress(ValueError):  # empty cell
                pending.append((cell.cell_contents, depth + 1))
    return None


def abort_transport(transport: asyncio.Transport) -> None:
    """Reset the TCP connection (RST, no WebSocket close frame), like a network failure."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def abort_connection(send: object) -> None:
    """Reset the connection behind an ASGI `send` (RuntimeError if it cannot be reached)."""
    transport = find_transport(send)
    if transport is None:
        raise RuntimeError("cannot reach the server transport to abort the connection")
    abort_transport(transport)
