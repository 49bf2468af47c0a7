"""The Twilio side of a call: typed sends on the Media Streams socket (one writer at a time)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from services.media.twilio import protocol as tw


class LineTap(Protocol):
    """Hears the line (the call recording): caller frames, agent audio sent, clears."""

    def caller(self, timestamp_ms: int, audio: bytes) -> None: ...
    def agent(self, audio: bytes) -> None: ...
    def cleared(self) -> None: ...


class TwilioLink:
    """Send media/mark/clear to Twilio and receive raw frames."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.stream_sid = ""
        self.closed = False
        self._lock = asyncio.Lock()
        self.tap: LineTap | None = None

    def heard(self, media: tw.Media) -> None:
        """A caller frame arrived (readers call this for every `media` message)."""
        if self.tap is not None:
            self.tap.caller(media.timestamp_ms, media.payload)

    async def receive(self) -> str | bytes:
        """The next frame; raises WebSocketDisconnect when Twilio is gone."""
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            self.closed = True
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        return text if text is not None else bytes(message.get("bytes") or b"")

    async def _send(self, text: str) -> bool:
        """Send one message; audio for a socket that is already closed goes nowhere."""
        async with self._lock:
            if self.closed:
                return False
            try:
                await self.ws.send_text(text)
            except (RuntimeError, OSError, WebSocketDisconnect):
                self.closed = True
                return False
            return True

    async def send_media(self, audio: bytes) -> None:
        """Queue agent audio for playback."""
        if await self._send(tw.media_message(self.stream_sid, audio)) and self.tap is not None:
            self.tap.agent(audio)

    async def send_mark(self, name: str) -> None:
        """Ask Twilio to echo `name` once the audio before it has played."""
        await self._send(tw.mark_message(self.stream_sid, name))

    async def send_clear(self) -> None:
        """Drop Twilio's queued audio (barge-in)."""
        if await self._send(tw.clear_message(self.stream_sid)) and self.tap is not None:
            self.tap.cleared()

    async def close(self, code: int, reason: str) -> None:
        """Close the socket (Twilio then asks the gateway's after-stream URL what to do)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(RuntimeError, OSError):
            await self.ws.close(code=code, reason=reason[:120])
