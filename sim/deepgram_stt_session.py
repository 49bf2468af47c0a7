"""One Deepgram live STT simulator socket: its settings, scripted session and the loop that
reads client frames and writes (optionally delayed) server messages. The HTTP/WebSocket app
around it is `sim.deepgram_stt_server`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from starlette.websockets import WebSocket, WebSocketDisconnect

from sim import stt_reconnect as reconnect
from sim.stt_script import DgMessage, SttScriptEngine


class DeepgramSttSimOptions(BaseModel):
    """Deepgram live STT simulator settings."""

    api_key: str = Field("dg-sim", description="API key accepted in `Authorization: Token <key>`.")
    processing_latency_ms: int = Field(
        0, ge=0, description="Extra wall-clock delay before each server message is sent."
    )
    idle_timeout_s: float = Field(
        10.0, gt=0, description="Close 1011 NET-0001 after this long without audio or messages."
    )
    interim_every_ms: int = Field(
        200, gt=0, description="Audio-time interval between interim Results during speech."
    )


class ScriptUtterance(BaseModel):
    """One scripted utterance for the socket(s) opened with `tag=<tag>`."""

    tag: str = Field(description="Value of the `tag` query param (the CallSid).")
    text: str = Field(min_length=1, description="What the caller says.")
    start_ms: int = Field(ge=0, description="Speech onset in the socket's audio time.")
    end_ms: int = Field(gt=0, description="Speech end in the socket's audio time.")
    interim_text: str | None = Field(
        None, description="What the interim results say instead (as many words): a misheard word."
    )


@dataclass
class SttSession:
    """One accepted /v1/listen socket (exposed via GET /sim/listen/sessions)."""

    tags: list[str]
    request_id: str
    engine: SttScriptEngine
    messages_sent: int = 0
    closed: bool = False
    close_code: int | None = None
    close_reason: str | None = None
    audio_offset_ms: int = 0  # caller audio time of the first byte (see sim/stt_reconnect.py)
    dropped: str | None = None  # "close" | "abort" once POST /sim/listen/drop hit it
    drop: Callable[[str], None] | None = None  # set while the socket is served, until dropped

    def add_script(self, utt: ScriptUtterance) -> None:
        """Script `utt` (caller audio time) in this socket's clock, if not already past."""
        window = reconnect.socket_window(utt.start_ms, utt.end_ms, self.audio_offset_ms)
        text = reconnect.heard_words(utt.text, utt.start_ms, utt.end_ms, self.audio_offset_ms)
        if window is not None and text:
            # A socket that hears only part of the words (a reconnect) gets no other hypothesis.
            interim = utt.interim_text if text == utt.text else None
            self.engine.add_utterance(text, *window, interim_text=interim)

    def remove_script(self, utt: ScriptUtterance) -> None:
        """Withdraw `utt` from this socket (the inverse of `add_script`)."""
        window = reconnect.socket_window(utt.start_ms, utt.end_ms, self.audio_offset_ms)
        text = reconnect.heard_words(utt.text, utt.start_ms, utt.end_ms, self.audio_offset_ms)
        if window is not None and text:
            self.engine.remove_utterance(text, *window)

    def summary(self) -> dict[str, Any]:
        return {
            "tag": self.tags[0] if self.tags else None,
            "tags": self.tags,
            "request_id": self.request_id,
            "audio_ms": round(self.engine.audio_ms, 3),
            "bytes": self.engine.bytes_received,
            "closed": self.closed,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "messages_sent": self.messages_sent,
            "audio_offset_ms": self.audio_offset_ms,
            "dropped": self.dropped,
        }


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


class SessionRunner:
    """Reads client frames and writes (optionally delayed) server messages."""

    def __init__(self, ws: WebSocket, session: SttSession, options: DeepgramSttSimOptions):
        self.ws = ws
        self.session = session
        self.options = options
        self.queue: asyncio.Queue[tuple[float, DgMessage | Close]] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self.last_rx = self.loop.time()  # when the client's last message arrived
        self._idle_timer: asyncio.TimerHandle | None = None
        session.drop = self.drop

    def drop(self, mode: str) -> None:
        """Simulate a network failure: 1011 NET-0000 close ("close") or a TCP reset ("abort")."""
        self.session.dropped, self.session.drop = mode, None  # drop once
        if mode == "abort":
            reconnect.abort_connection(self.ws._send)
        else:  # queued messages already due are delivered first
            self.enqueue([Close(reconnect.DROP_CLOSE_CODE, reconnect.DROP_CLOSE_REASON)])

    def enqueue(self, items: list[DgMessage | Close]) -> None:
        due = self.loop.time() + self.options.processing_latency_ms / 1000.0
        for item in items:
            self.queue.put_nowait((due, item))

    async def _sender(self) -> None:
        while True:
            due, item = await self.queue.get()
            delay = due - self.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                if isinstance(item, Close):
                    self.session.close_code, self.session.close_reason = item.code, item.reason
                    await self.ws.close(item.code, item.reason)
                    return
                await self.ws.send_text(json.dumps(item))
            except (WebSocketDisconnect, RuntimeError):
                return  # client went away; nothing left to deliver
            self.session.messages_sent += 1

    async def run(self) -> None:
        sender = asyncio.create_task(self._sender())
        try:
            disconnected = await self._receive_loop()
            if disconnected:
                sender.cancel()
            await asyncio.wait([sender])
        finally:
            if not sender.done():
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
            self.session.closed, self.session.drop = True, None

    async def _receive_loop(self) -> bool:
        """Returns True if the client disconnected, False if we initiated the close (also
        after `idle_timeout_s` without any client message: 1011 NET-0001)."""
        try:
            async with asyncio.timeout(None) as idle:
                self.last_rx = self.loop.time()
                self._idle_timer = self.loop.call_at(
                    self.last_rx + self.options.idle_timeout_s, self._idle_check, idle
                )
                try:
                    return await self._receive_messages()
                finally:
                    if self._idle_timer is not None:
                        self._idle_timer.cancel()
        except TimeoutError:
            self.enqueue([Close(1011, "NET-0001")])
            return False

    def _idle_check(self, idle: asyncio.Timeout) -> None:
        """One timer per idle period instead of a timeout around every 20 ms frame: when it
        fires, either nothing came for `idle_timeout_s` (expire the receive now) or it re-arms
        for the last message's deadline."""
        due = self.last_rx + self.options.idle_timeout_s
        now = self.loop.time()
        if now >= due:
            idle.reschedule(now)
        else:
            self._idle_timer = self.loop.call_at(due, self._idle_check, idle)

    async def _receive_messages(self) -> bool:
        engine = self.session.engine
        receive, clock = self.ws.receive, self.loop.time
        while True:
            msg = await receive()
            self.last_rx = clock()
            if msg["type"] == "websocket.disconnect":
                return True
            data: bytes | None = msg.get("bytes")
            text: str | None = msg.get("text")
            if self.session.dropped is not None:
                continue  # the "network" is gone: nothing more reaches the engine
            if data is not None:
                if len(data) == 0:
                    self.enqueue([*engine.close(), Close(1000, "")])
                    return False
                messages = engine.feed(data)
                if messages:  # most frames produce none
                    self.enqueue(list(messages))
                continue
            kind = control_type(text or "")
            if kind == "KeepAlive":
                continue
            if kind == "Finalize":
                self.enqueue(list(engine.finalize()))
            elif kind == "CloseStream":
                self.enqueue([*engine.close(), Close(1000, "")])
                return False
            else:
                self.enqueue([Close(1008, f"DATA-0001: unsupported text message {kind!r}")])
                return False


def control_type(text: str) -> str | None:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(payload, dict) and isinstance(payload.get("type"), str):
        kind: str = payload["type"]
        return kind
    return None
