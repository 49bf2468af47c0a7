"""Runs one simulated Twilio call (see sim.twilio_caller for the public API)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Callable
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from sim.aura_client import AuraError, synthesize
from sim.playout import PlayoutQueue
from sim.twilio_call_model import (
    AgentSegment,
    CallEvent,
    CallResult,
    CallScript,
    EventDirection,
    SpeakOver,
    TwilioCallerOptions,
)
from sim.twilio_call_turns import CallError, CallTurns, ServerHungUp
from sim.twilio_media import (
    FRAME_BYTES,
    FRAME_MS,
    SILENCE_B64,
    MediaStreamSession,
    open_media_stream,
    silence_frame,
    speech_frame,
    speech_frame_b64,
)
from sim.twilio_webhook import (
    WebhookResult,
    http_client,
    inbound_call_params,
    new_sid,
    post_voice_webhook,
)

OnEvent = Callable[[CallEvent], None]
MAX_STREAMS = 10
"""Most streams one simulated call opens (a resume loop ends there, with an error)."""


class CallRun:
    def __init__(self, opts: TwilioCallerOptions, script: CallScript, on_event: OnEvent | None):
        self.opts = opts
        self.script = script
        self.on_event = on_event
        self.t0 = time.monotonic()
        self.result = CallResult(
            call_sid=opts.call_sid or new_sid("CA"), account_sid=opts.account_sid
        )
        self.playout = PlayoutQueue()
        self.session: MediaStreamSession | None = None
        self.stream_t0 = 0.0
        self.frames_sent = 0
        self.speech: tuple[int, int] | None = None  # [start, end) frame indices
        self.voice = b""  # synthesised µ-law of the speech window (else speech-like babble)
        self.caller_track = bytearray()
        self.agent_track = bytearray()
        self._agent_seen = 0  # bytes of this stream's playout already in agent_track
        self.received = bytearray()
        self.agent_playing = False
        self.closed = asyncio.Event()
        self.we_closed = False
        self.between_streams = False  # the stream ended; Twilio asks the action URL next
        self._past_playouts: list[PlayoutQueue] = []
        self.stream_received_start = 0  # len(received) when the current stream began
        self.http = http_client(opts.http_timeout_s)
        self._pacing = False  # _pace is running: frame waiters get checked after each frame
        self._frame_waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def make_turns(self) -> CallTurns:
        """What drives the script (subclasses may script differently)."""
        return CallTurns(self)

    # -- helpers -----------------------------------------------------------------------

    def log(self, direction: EventDirection, kind: str, **data: Any) -> None:
        event = CallEvent((time.monotonic() - self.t0) * 1000, direction, kind, data)
        self.result.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def now_ms(self) -> float:
        return (time.monotonic() - self.stream_t0) * 1000

    def params(self, status: str) -> dict[str, str]:
        o = self.opts
        return inbound_call_params(
            call_sid=self.result.call_sid,
            account_sid=o.account_sid,
            from_number=o.from_number,
            to_number=o.to_number,
            call_status=status,
        )

    async def until_frame(self, ready: Callable[[], bool]) -> None:
        """Wait until ``ready()`` holds, checking it after each frame sent (every 20 ms), or
        until the stream ends: a poll at frame granularity without a timer of its own (100
        callers share one event loop). Callers re-check their own conditions afterwards
        (the call may have ended); once the pacer stopped this just waits one frame."""
        if ready():
            return
        if not self._pacing:
            await asyncio.sleep(FRAME_MS / 1000)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._frame_waiters.append((ready, waiter))
        await waiter

    def _wake_frame_waiters(self, everyone: bool = False) -> None:
        keep: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        for ready, waiter in self._frame_waiters:
            if waiter.done():
                continue  # cancelled
            if everyone or ready():
                waiter.set_result(None)
            else:
                keep.append((ready, waiter))
        self._frame_waiters = keep

    async def echo(self, marks: list[str]) -> None:
        assert self.session is not None
        for name in marks:
            self.result.marks_echoed.append(name)
            self.log("sent", "mark", name=name)
            await self.session.send_mark_echo(name)

    # -- top level ---------------------------------------------------------------------

    async def run(self) -> CallResult:
        try:
            if await self._prepare_voice():
                await self._run()
        finally:
            await self.http.aclose()
            self._finish()
        return self.result

    async def _prepare_voice(self) -> bool:
        """A speaking caller has all its lines synthesised before it dials (a person knows
        what they will say; synthesis time must not count as the caller's silence)."""
        url = self.opts.tts_url
        if not url:
            return True
        texts = [x.text if isinstance(x, SpeakOver) else x for x in self.script.lines]
        try:
            for text in texts:
                if isinstance(text, str):
                    await synthesize(url, text, self.opts.tts_api_key)
        except (AuraError, OSError, TimeoutError) as exc:
            self.result.error = f"caller TTS at {url} failed: {exc!r}"
            return False
        return True

    async def _run(self) -> None:
        o, r = self.opts, self.result
        url = o.gateway_url.rstrip("/") + o.voice_path
        self.log("sent", "webhook", url=url, From=o.from_number, To=o.to_number)
        hook = await post_voice_webhook(url, o.auth_token, self.params("ringing"), client=self.http)
        r.webhook_status, r.twiml = hook.status_code, hook.twiml
        self.log("recv", "twiml", status=hook.status_code, twiml=hook.twiml)
        if hook.error is not None:
            r.error = hook.error
            return
        r.stream_url, r.action_url = hook.stream_url, hook.action_url
        r.custom_parameters = hook.custom_parameters
        if r.stream_url is None:
            self.log("info", "no-stream", verbs=hook.parsed.verbs if hook.parsed else [])
            return
        converse: asyncio.Task[None] | None = None
        try:
            async with asyncio.timeout(o.max_call_s):
                while r.stream_url is not None:
                    if await self._open_stream(r.stream_url):
                        converse = converse or asyncio.create_task(self._converse())
                        await self._stream()
                    elif r.resumes == 0 or not r.action_url or r.resumes >= MAX_STREAMS:
                        return  # r.error says why
                    else:  # Twilio: a <Stream> that cannot connect ends; the action decides
                        r.warnings.append(r.error or "stream connect failed")
                        r.error = None
                        r.hangup_by = "server"
                        self.between_streams = True
                    if not (r.hangup_by == "server" and r.action_url):
                        break
                    # Like Twilio: the stream is over, ask the <Connect action> what next and
                    # obey it (a fresh <Connect><Stream> resumes the call; anything else ends).
                    next_hook = await self._after_stream(r.action_url)
                    if next_hook is None or next_hook.stream_url is None:
                        break
                    await self._forget_stt_scripts()  # before the new stream's lines
                    self._next_stream(next_hook.stream_url, next_hook.custom_parameters)
                    r.action_url = next_hook.action_url
        except TimeoutError:
            r.error = r.error or f"call exceeded max_call_s={o.max_call_s}"
            self.log("info", "error", message=r.error)
            await self._hangup()
        finally:
            self.between_streams = False
            if converse is not None:
                converse.cancel()
                await asyncio.gather(converse, return_exceptions=True)

    async def _open_stream(self, url: str) -> bool:
        o, r = self.opts, self.result
        try:
            self.session = await open_media_stream(
                url, o.auth_token, call_sid=r.call_sid, account_sid=o.account_sid
            )
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            r.error = f"media websocket connect failed: {type(exc).__name__}: {exc}"
            return False
        r.stream_sid = self.session.stream_sid
        return True

    def _next_stream(self, url: str, parameters: dict[str, str]) -> None:
        """Twilio resumes the call on a new stream: a new socket, audio clock and playback
        buffer (what was still queued is gone); the conversation goes on."""
        r = self.result
        r.resumes += 1
        r.stream_url, r.custom_parameters = url, parameters
        self.log("info", "resume", url=url)
        self._past_playouts.append(self.playout)
        self.playout = PlayoutQueue()
        self._agent_seen = 0
        self.stream_received_start = len(self.received)
        self.speech = None
        self.frames_sent = 0
        self.agent_playing = False
        self.closed = asyncio.Event()
        self.we_closed = False
        r.hangup_by = None
        self.between_streams = False

    async def _forget_stt_scripts(self) -> None:
        """A new stream's audio clock restarts at 0: the STT simulator must not hear the
        earlier streams' lines again on it (best effort: a failure only risks a repeat)."""
        if self.opts.stt_control_url is None:
            return
        body = {"tag": self.result.call_sid}
        for url in [self.opts.stt_control_url, *self.opts.extra_control_urls]:
            try:
                await self.http.post(url.rstrip("/") + "/sim/listen/new-stream", json=body)
            except httpx.HTTPError as exc:
                self.result.warnings.append(f"STT new-stream request failed: {exc!r}")

    async def _converse(self) -> None:
        """The script, across every stream of the call."""
        try:
            await self.make_turns().converse()
        except (ServerHungUp, ConnectionClosed):
            self.log("info", "server-hung-up-during-script")
        except CallError as exc:
            self.result.error = str(exc)
            self.log("info", "error", message=str(exc))
            await self._hangup()

    async def _stream(self) -> None:
        assert self.session is not None
        s = self.session
        await s.send_connected()
        self.log("sent", "connected")
        self.stream_t0 = time.monotonic()
        await s.send_start(self.result.custom_parameters)
        self.log(
            "sent", "start", streamSid=s.stream_sid, customParameters=self.result.custom_parameters
        )
        tasks = [
            asyncio.create_task(self._pace()),
            asyncio.create_task(self._receive()),
        ]
        try:
            await self.closed.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _hangup(self) -> None:
        if self.session is None or self.closed.is_set() or self.we_closed:
            return
        self.we_closed = True
        self.result.hangup_by = self.result.hangup_by or "caller"
        try:
            await self.session.send_stop()
            self.log("sent", "stop")
            await self.session.close(1000)
        except ConnectionClosed:
            self.log("info", "closed-before-stop")
        self.closed.set()

    async def _after_stream(self, action_url: str) -> WebhookResult | None:
        self.log("sent", "connect-action", url=action_url)
        hook = await post_voice_webhook(
            action_url, self.opts.auth_token, self.params("in-progress"), client=self.http
        )
        self.result.after_stream_status = hook.status_code
        self.result.after_stream_twiml = hook.twiml
        self.result.after_stream_twimls.append(hook.twiml)
        self.log("recv", "after-stream-twiml", status=hook.status_code, twiml=hook.twiml)
        if hook.error is not None:
            self.result.warnings.append(f"connect action: {hook.error}")
            return None
        return hook

    def _finish(self) -> None:
        r, q = self.result, self.playout
        r.agent_audio = bytes(self.received)
        queues = [*self._past_playouts, q]
        r.agent_played_audio = b"".join(p.played_audio for p in queues)
        r.agent_segments = [
            AgentSegment(s.mark, bytes(s.audio), s.played) for p in queues for s in p.segments
        ]
        r.frames_sent = self.frames_sent
        r.caller_track = bytes(self.caller_track)
        r.agent_track = bytes(self.agent_track)

    # -- media tasks -------------------------------------------------------------------

    async def _pace(self) -> None:
        """Send frame n at stream_t0 + 20 ms * n; also runs the playout clock and checks the
        frame waiters (see until_frame)."""
        assert self.session is not None
        send = self.session.send_media_payload  # payloads are pre-encoded (base64, cached)
        self._pacing = True
        try:
            while not self.closed.is_set():
                delay = self.stream_t0 + self.frames_sent * FRAME_MS / 1000 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self.closed.is_set() or self.we_closed:
                    return
                n = self.frames_sent
                payload = self._payload(n)
                await send(payload, int(self.now_ms()))
                self.frames_sent = n + 1
                await self._tick()
        except ConnectionClosed:
            return
        finally:
            self._pacing = False
            self._wake_frame_waiters(everyone=True)

    def _payload(self, n: int) -> str:
        """Frame n as a base64 payload; also appended to the caller's track."""
        window = self.speech
        if window is None or not window[0] <= n < window[1]:
            self.caller_track.extend(silence_frame())
            return SILENCE_B64
        if not self.voice:
            self.caller_track.extend(speech_frame(n))
            return speech_frame_b64(n)
        offset = (n - window[0]) * FRAME_BYTES
        frame = self.voice[offset : offset + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")
        self.caller_track.extend(frame)
        return base64.b64encode(frame).decode()

    def _track_agent(self) -> None:
        """The agent's newly played audio, kept level with the caller's track."""
        new = self.playout.played_since(self._agent_seen)
        self._agent_seen += len(new)
        self.agent_track.extend(new)
        if len(self.agent_track) < len(self.caller_track):
            self.agent_track.extend(b"\xff" * (len(self.caller_track) - len(self.agent_track)))

    async def _tick(self) -> None:
        now = self.now_ms()
        marks = self.playout.advance(now)
        self._track_agent()
        if marks:
            await self.echo(marks)
        if self.agent_playing and self.playout.is_idle(now):
            self.agent_playing = False
            self.log("info", "agent-audio-end", played_bytes=self.playout.played_bytes)
        if self._frame_waiters:
            self._wake_frame_waiters()

    async def _receive(self) -> None:
        assert self.session is not None
        s, r = self.session, self.result
        while True:
            msg = await s.recv()
            if msg is None:
                break
            event = msg.get("event")
            if msg.get("streamSid") not in (None, s.stream_sid) and event != "_invalid":
                r.warnings.append(f"{event}: unexpected streamSid {msg.get('streamSid')!r}")
            try:
                await self._handle(event, msg)
            except ConnectionClosed:
                break
        if not self.we_closed:
            r.hangup_by = "server"
            r.close_code, r.close_reason = s.close_code, s.close_reason
            self.between_streams = r.action_url is not None  # the script waits for the next
            self.log("recv", "close", code=s.close_code, reason=s.close_reason)
        self.closed.set()

    async def _handle(self, event: Any, msg: dict[str, Any]) -> None:
        now = self.now_ms()
        if event == "media":
            media = msg.get("media")
            payload = media.get("payload") if isinstance(media, dict) else None
            try:
                if not isinstance(payload, str):
                    raise ValueError("payload missing")
                audio = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                self.result.warnings.append("media with invalid base64 payload")
                self.log("recv", "media-invalid", message=msg)
                return
            if not self.agent_playing:
                self.agent_playing = True
                self.log("info", "agent-audio-start")
            self.received.extend(audio)
            self.playout.push_audio(audio, now)
        elif event == "mark":
            mark = msg.get("mark")
            name = str(mark.get("name")) if isinstance(mark, dict) else ""
            self.log("recv", "mark", name=name, queued_ms=self.playout.queued_ms)
            self.playout.push_mark(name, now)
            await self.echo(self.playout.advance(now))
        elif event == "clear":
            self.result.clears += 1
            self.log("recv", "clear", dropped_ms=self.playout.queued_ms)
            await self.echo(self.playout.clear(now))
        else:
            self.log("recv", "unknown", message=msg)
