"""Twilio side of a bidirectional Media Streams WebSocket (sections 3-6 of
shared/protocols/twilio-media-streams.md): the signed upgrade, Twilio->server messages
with Twilio's numbering, and caller audio frames."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from sim.speech_audio import speech_frame as sim_speech_frame
from sim.speech_audio import speech_frame_b64 as sim_speech_frame_b64
from sim.twilio_webhook import new_sid, sign_request

FRAME_MS = 20
FRAME_BYTES = 160
SILENCE_BYTE = 0xFF
SILENCE_B64 = base64.b64encode(bytes([SILENCE_BYTE]) * FRAME_BYTES).decode()
"""``silence_frame()`` as a Media Streams payload."""


def silence_frame() -> bytes:
    """20 ms of µ-law silence."""
    return bytes([SILENCE_BYTE]) * FRAME_BYTES


def mulaw_encode(samples: np.ndarray[Any, Any]) -> bytes:
    """G.711 µ-law encode signed 16-bit samples."""
    x = samples.astype(np.int32)
    sign = (x < 0).astype(np.int32) << 7
    mag = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return bytes((~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes())


def speech_frame(index: int) -> bytes:
    """20 ms of caller "speech": speech-like audio a VAD hears as voice (never digital
    silence), looping deterministically in ``index``."""
    return sim_speech_frame(index)


def speech_frame_b64(index: int) -> str:
    """``speech_frame(index)`` base64-encoded (cached: no per-frame encoding)."""
    return sim_speech_frame_b64(index)


class MediaStreamSession:
    """One Media Streams WebSocket, as Twilio (the client). Numbering follows Twilio:
    ``connected`` has no sequenceNumber, ``start`` is "1", +1 per message after it of any
    kind; media ``chunk`` counts from "1"; ``timestamp`` is ms since ``start`` was sent."""

    def __init__(
        self,
        ws: ClientConnection,
        *,
        url: str,
        account_sid: str,
        call_sid: str,
        stream_sid: str,
    ) -> None:
        self.ws = ws
        self.url = url
        self.account_sid = account_sid
        self.call_sid = call_sid
        self.stream_sid = stream_sid  # also sets _sid_json
        self._seq = 0
        self._chunk = 0
        self._started_at: float | None = None
        self._lock = asyncio.Lock()

    @property
    def stream_sid(self) -> str:
        return self._stream_sid

    @stream_sid.setter
    def stream_sid(self, value: str) -> None:
        self._stream_sid = value
        self._sid_json = json.dumps(value)  # as it appears in every media message

    # -- low level ---------------------------------------------------------------------

    async def send_raw(self, data: str | bytes) -> None:
        """Send a frame exactly as given (text for str, binary for bytes)."""
        await self.ws.send(data)

    async def send_json(self, message: dict[str, Any]) -> None:
        """Send ``message`` as a JSON text frame, unmodified (no numbering added)."""
        await self.ws.send(json.dumps(message))

    async def _send_numbered(self, message: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            self._seq += 1
            full = {"event": message["event"], "sequenceNumber": str(self._seq)}
            full.update({k: v for k, v in message.items() if k != "event"})
            full["streamSid"] = self.stream_sid
            await self.ws.send(json.dumps(full))
            return full

    async def recv(self, timeout_s: float | None = None) -> dict[str, Any] | None:
        """Next server message parsed as JSON; None once the socket is closed. Non-JSON
        frames come back as ``{"event": "_invalid", "raw": ...}``. Raises TimeoutError."""
        try:
            if timeout_s is None:
                data = await self.ws.recv()
            else:
                async with asyncio.timeout(timeout_s):
                    data = await self.ws.recv()
        except ConnectionClosed:
            return None
        if isinstance(data, bytes):
            return {"event": "_binary", "raw": base64.b64encode(data).decode()}
        try:
            msg = json.loads(data)
        except json.JSONDecodeError:
            return {"event": "_invalid", "raw": data}
        if not isinstance(msg, dict):
            return {"event": "_invalid", "raw": data}
        return msg

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    @property
    def close_reason(self) -> str | None:
        return self.ws.close_reason

    @property
    def sequence_number(self) -> int:
        """Last sequenceNumber sent (0 before ``start``)."""
        return self._seq

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code, reason)

    # -- Twilio messages ---------------------------------------------------------------

    async def send_connected(self) -> None:
        await self.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    async def send_start(
        self, custom_parameters: dict[str, str], tracks: list[str] | None = None
    ) -> dict[str, Any]:
        self._started_at = time.monotonic()
        return await self._send_numbered(
            {
                "event": "start",
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": tracks or ["inbound"],
                    "customParameters": dict(custom_parameters),
                    "mediaFormat": {
                        "encoding": "audio/x-mulaw",
                        "sampleRate": 8000,
                        "channels": 1,
                    },
                },
            }
        )

    async def send_media_frame(self, payload: bytes, timestamp_ms: int | None = None) -> None:
        """One inbound ``media`` message (normally 160 bytes = 20 ms)."""
        await self.send_media_payload(base64.b64encode(payload).decode(), timestamp_ms)

    async def send_media_payload(self, payload_b64: str, timestamp_ms: int | None = None) -> None:
        """``send_media_frame`` for audio already base64-encoded (``payload_b64`` must be
        base64 text). The text is exactly ``json.dumps`` of the numbered message, written out
        directly: callers send 50 of these per second each."""
        if timestamp_ms is None:
            started = self._started_at if self._started_at is not None else time.monotonic()
            timestamp_ms = int((time.monotonic() - started) * 1000)
        self._chunk += 1
        chunk = self._chunk
        async with self._lock:
            self._seq += 1
            await self.ws.send(
                f'{{"event": "media", "sequenceNumber": "{self._seq}", "media": '
                f'{{"track": "inbound", "chunk": "{chunk}", "timestamp": "{timestamp_ms}", '
                f'"payload": "{payload_b64}"}}, "streamSid": {self._sid_json}}}'
            )

    async def send_dtmf(self, digit: str) -> None:
        await self._send_numbered(
            {"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": digit}}
        )

    async def send_mark_echo(self, name: str) -> None:
        await self._send_numbered({"event": "mark", "mark": {"name": name}})

    async def send_stop(self) -> None:
        await self._send_numbered(
            {"event": "stop", "stop": {"accountSid": self.account_sid, "callSid": self.call_sid}}
        )


async def open_media_stream(
    url: str,
    auth_token: str,
    *,
    call_sid: str,
    account_sid: str,
    stream_sid: str | None = None,
    signature: str | None = None,
    open_timeout_s: float = 10.0,
) -> MediaStreamSession:
    """Open the Stream WebSocket the way Twilio does: ``X-Twilio-Signature`` over the URL
    exactly as given, no params (``signature`` overrides it for negative tests). Sends
    nothing yet. Raises websockets.InvalidHandshake / OSError / TimeoutError on failure."""
    sig = signature if signature is not None else sign_request(auth_token, url)
    ws = await connect(
        url,
        additional_headers={"X-Twilio-Signature": sig},
        user_agent_header="Twilio.TmeWs/1.0",
        compression=None,
        proxy=None,
        open_timeout=open_timeout_s,
        max_size=None,
    )
    return MediaStreamSession(
        ws,
        url=url,
        account_sid=account_sid,
        call_sid=call_sid,
        stream_sid=stream_sid or new_sid("MZ"),
    )
