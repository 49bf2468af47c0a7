"""One call on one media replica: Twilio socket <-> STT, call log -> TTS -> Twilio."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketDisconnect

from services.media import twilio_protocol as tw
from services.media.segment_ledger import SegmentLedger
from services.media.stt_deepgram import (
    DeepgramStt,
    SttSpeechStarted,
    SttTranscript,
    SttUtteranceEnd,
)
from services.media.tts_deepgram import DeepgramTts, TtsCleared, TtsFlushed
from shared import events as ev
from shared import keys, stream_token
from shared.bus import CallLog
from shared.logs import call_sid_var
from shared.settings import Settings
from shared.stream_mux import StreamMux, Subscription
from shared.telemetry import context_from, tracer

log = logging.getLogger(__name__)
_tracer = tracer(__name__)

FRAME_MS = 20


@dataclass
class MediaDeps:
    """What every call session on this replica shares."""

    settings: Settings
    log: CallLog
    mux: StreamMux
    replica: str


class CallClosed(Exception):
    """The session must end; `reason` goes to the call log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CallSession:
    """Runs one Media Stream from `start` to `stop`."""

    def __init__(self, ws: WebSocket, deps: MediaDeps) -> None:
        self.ws = ws
        self.deps = deps
        self.log = deps.log
        self.started_mono = time.monotonic()
        self.call_sid = ""
        self.tenant_id = ""
        self.stream_sid = ""
        self.turn_id = 0
        self.utterance: list[str] = []
        self.frame_times: list[float] = []
        self.ledger = SegmentLedger()
        self.audio_in: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.send_lock = asyncio.Lock()

    # ---- entry point ---------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the socket until the call ends; always leaves call.ended in the log."""
        await self.ws.accept()
        try:
            start = await self._await_start()
        except tw.ProtocolError as exc:
            await self._close(1008, str(exc))
            return
        try:
            stream_token.verify(
                self.deps.settings.stream_token_secret,
                start.call_sid,
                start.custom_parameters.get("token"),
            )
        except stream_token.InvalidStreamToken as exc:
            log.warning("rejected media stream: %s", exc)
            await self._close(1008, f"invalid stream token: {exc}")
            return
        self.call_sid, self.stream_sid = start.call_sid, start.stream_sid
        call_sid_var.set(self.call_sid)
        history = await self.log.entries(self.call_sid)
        started = next((e for _, e in history if isinstance(e, ev.CallStarted)), None)
        if started is None:
            await self._close(1008, "unknown call")
            return
        self.tenant_id = started.tenant_id
        with _tracer.start_as_current_span(
            "media.stream",
            context=context_from(started.traceparent),
            attributes={"call.sid": self.call_sid, "media.replica": self.deps.replica},
        ):
            await self._serve(started, history)

    async def _serve(self, started: ev.CallStarted, history: list[tuple[str, ev.Event]]) -> None:
        self.turn_id = max(
            (e.turn_id for _, e in history if isinstance(e, ev.TurnRequested)), default=0
        )
        last_id = history[-1][0]
        reason = "caller-hangup"
        stt = DeepgramStt(self.deps.settings, self.call_sid)
        tts = DeepgramTts(self.deps.settings, started.voice)
        sub = await self.deps.mux.subscribe(self.log.key(self.call_sid), after=last_id)
        tasks: list[asyncio.Task[None]] = []
        try:
            await self._append(
                ev.StreamStarted(
                    call_sid=self.call_sid, stream_sid=self.stream_sid, replica=self.deps.replica
                )
            )
            if not any(isinstance(e, ev.AgentText) for _, e in history) and started.greeting:
                await self._append(
                    ev.AgentText(call_sid=self.call_sid, turn_id=0, seq=0, text=started.greeting)
                )
                await self._append(ev.AgentTurnDone(call_sid=self.call_sid, turn_id=0, chunks=1))
            inbound = asyncio.create_task(self._inbound())
            await asyncio.gather(stt.open(), tts.open())
            tasks = [
                asyncio.create_task(self._stt_sender(stt)),
                asyncio.create_task(self._stt_reader(stt)),
                asyncio.create_task(self._log_follower(sub, tts)),
                asyncio.create_task(self._tts_reader(tts)),
            ]
            done, _ = await asyncio.wait([inbound, *tasks], return_when=asyncio.FIRST_COMPLETED)
            finished = inbound if inbound in done else done.pop()
            if finished is not inbound:
                failure = finished.exception()
                reason = f"provider-error: {failure}" if failure else "provider-closed"
                await self._append(
                    ev.ProviderError(call_sid=self.call_sid, provider="deepgram", message=reason)
                )
                inbound.cancel()
                await self._close(1011, "provider failure")
            else:
                outcome = inbound.exception()
                if isinstance(outcome, CallClosed):
                    reason = outcome.reason
                elif outcome is not None:
                    raise outcome
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.deps.mux.unsubscribe(sub)
            with contextlib.suppress(OSError, RuntimeError):
                await stt.close()
            with contextlib.suppress(OSError, RuntimeError):
                await tts.close()
            ended = ev.CallEnded(
                call_sid=self.call_sid,
                tenant_id=self.tenant_id,
                reason=reason,
                duration_s=round(time.monotonic() - self.started_mono, 3),
            )
            await self._append(ended)
            await self.log.publish(keys.CALLS, {"call_sid": self.call_sid, "type": ended.type})

    # ---- Twilio side ---------------------------------------------------------------------
    async def _await_start(self) -> tw.Start:
        while True:
            message = tw.parse(await self._receive_frame())
            if isinstance(message, tw.Start):
                return message
            if isinstance(message, tw.Media | tw.Mark | tw.Dtmf):
                raise tw.ProtocolError(f"{type(message).__name__.lower()} before start")
            if isinstance(message, tw.Stop):
                raise tw.ProtocolError("stop before start")

    async def _receive_frame(self) -> str | bytes:
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        return text if text is not None else bytes(message.get("bytes") or b"")

    async def _inbound(self) -> None:
        try:
            while True:
                message = tw.parse(await self._receive_frame())
                if isinstance(message, tw.Media):
                    self.frame_times.append(time.time())
                    self.audio_in.put_nowait(message.payload)
                elif isinstance(message, tw.Mark):
                    await self._on_mark(message.name)
                elif isinstance(message, tw.Dtmf):
                    await self._append(ev.Dtmf(call_sid=self.call_sid, digit=message.digit))
                elif isinstance(message, tw.Stop):
                    raise CallClosed("caller-hangup")
                elif isinstance(message, tw.Start):
                    raise tw.ProtocolError("duplicate start")
                elif isinstance(message, tw.Unknown):
                    log.info("ignoring unknown Twilio event %s", message.event)
        except tw.ProtocolError as exc:
            await self._close(1008, str(exc))
            raise CallClosed(f"protocol-error: {exc}") from exc
        except WebSocketDisconnect as exc:
            raise CallClosed("twilio-disconnected") from exc
        finally:
            self.audio_in.put_nowait(None)

    async def _send(self, text: str) -> None:
        async with self.send_lock:
            await self.ws.send_text(text)

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            await self.ws.close(code=code, reason=reason[:120])

    async def _on_mark(self, name: str) -> None:
        segment = self.ledger.played(name)
        if segment is not None:
            await self._append(
                ev.SegmentPlayed(
                    call_sid=self.call_sid, turn_id=segment.turn_id, seq=segment.seq, mark=name
                )
            )

    # ---- STT side ------------------------------------------------------------------------
    async def _stt_sender(self, stt: DeepgramStt) -> None:
        while (audio := await self.audio_in.get()) is not None:
            await stt.send(audio)

    async def _stt_reader(self, stt: DeepgramStt) -> None:
        async for event in stt.events():
            if isinstance(event, SttSpeechStarted):
                await self._append(
                    ev.SpeechStarted(call_sid=self.call_sid, audio_ms=event.audio_ms)
                )
            elif isinstance(event, SttTranscript) and event.text:
                if not event.is_final:
                    await self._append(
                        ev.TranscriptInterim(
                            call_sid=self.call_sid,
                            text=event.text,
                            audio_start_ms=event.start_ms,
                            audio_end_ms=event.end_ms,
                        )
                    )
                    continue
                await self._append(
                    ev.TranscriptFinal(
                        call_sid=self.call_sid,
                        text=event.text,
                        audio_start_ms=event.start_ms,
                        audio_end_ms=event.end_ms,
                        speech_final=event.speech_final,
                    )
                )
                self.utterance.append(event.text)
                if event.speech_final:
                    await self._request_turn(event.end_ms)
            elif isinstance(event, SttUtteranceEnd) and self.utterance:
                await self._request_turn(event.last_word_end_ms)
        raise ConnectionError("STT socket closed")

    def _wall_at(self, audio_ms: int) -> float:
        if not self.frame_times:
            return time.time()
        index = min(max(audio_ms // FRAME_MS, 0), len(self.frame_times) - 1)
        return self.frame_times[index]

    async def _request_turn(self, speech_end_ms: int) -> None:
        self.turn_id += 1
        turn_id, text = self.turn_id, " ".join(self.utterance)
        self.utterance = []
        stt_final_at = time.time()
        entry = await self._append(
            ev.TurnRequested(call_sid=self.call_sid, turn_id=turn_id, text=text)
        )
        await self.log.publish(
            keys.TURNS,
            {
                "call_sid": self.call_sid,
                "turn_id": str(turn_id),
                "entry_id": entry,
            },
        )
        await self._latency(turn_id, "speech_end", self._wall_at(speech_end_ms))
        await self._latency(turn_id, "stt_final", stt_final_at)

    # ---- TTS side ------------------------------------------------------------------------
    async def _log_follower(self, sub: Subscription, tts: DeepgramTts) -> None:
        async for _, event in sub:
            if isinstance(event, ev.AgentText) and event.text.strip():
                self.ledger.queue(event.turn_id, event.seq, event.text)
                await tts.speak(event.text)

    async def _tts_reader(self, tts: DeepgramTts) -> None:
        async for item in tts.events():
            if isinstance(item, bytes):
                segment, first = self.ledger.audio(len(item))
                if segment is None:
                    continue
                if first:
                    await self._latency(segment.turn_id, "tts_first_byte", time.time())
                await self._send(tw.media_message(self.stream_sid, item))
                if first:
                    await self._latency(segment.turn_id, "first_audio_sent", time.time())
            elif isinstance(item, TtsFlushed):
                done = self.ledger.flushed()
                if done is None:
                    continue
                await self._append(
                    ev.SegmentSent(
                        call_sid=self.call_sid,
                        turn_id=done.turn_id,
                        seq=done.seq,
                        mark=done.mark,
                        text=done.text,
                        audio_bytes=done.audio_bytes,
                    )
                )
                await self._send(tw.mark_message(self.stream_sid, done.mark))
            elif isinstance(item, TtsCleared):
                continue
        raise ConnectionError("TTS socket closed")

    # ---- log helpers ---------------------------------------------------------------------
    async def _append(self, event: ev.Event) -> str:
        if not event.tenant_id and self.tenant_id:
            event = event.model_copy(update={"tenant_id": self.tenant_id})
        return await self.log.append(event)

    async def _latency(self, turn_id: int, stage: ev.LatencyStage, at: float) -> None:
        await self._append(
            ev.LatencyMark(call_sid=self.call_sid, turn_id=turn_id, stage=stage, stage_at=at)
        )
