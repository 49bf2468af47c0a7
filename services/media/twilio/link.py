"""The Twilio side of a call: typed sends on the Media Streams socket (one writer at a time)."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect

from services.media.twilio import protocol as tw


class TwilioLink:
    """Send media/mark/clear to Twilio and receive raw frames."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.stream_sid = ""
        self.closed = False
        self._lock = asyncio.Lock()

    async def receive(self) -> str | bytes:
        """The next frame; raises WebSocketDisconnect when Twilio is gone."""
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            self.closed = True
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        return text if text is not None else bytes(message.get("bytes") or b"")

    async def _send(self, text: str) -> None:
        """Send one message; audio for a socket that is already closed goes nowhere."""
        async with self._lock:
            if self.closed:
                return
            try:
                await self.ws.send_text(text)
            except (RuntimeError, OSError, WebSocketDisconnect):
                self.closed = True

    async def send_media(self, audio: bytes) -> None:
        """Queue agent audio for playback."""
        await self._send(tw.media_message(self.stream_sid, audio))

    async def send_mark(self, name: str) -> None:
        """Ask Twilio to echo `name` once the audio before it has played."""
        await self._send(tw.mark_message(self.stream_sid, name))

    async def send_clear(self) -> None:
        """Drop Twilio's queued audio (barge-in)."""
        await self._send(tw.clear_message(self.stream_sid))

    async def close(self, code: int, reason: str) -> None:
        """Close the socket (Twilio then asks the gateway's after-stream URL what to do)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(RuntimeError, OSError):
            await self.ws.close(code=code, reason=reason[:120])
