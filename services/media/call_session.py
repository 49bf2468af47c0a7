"""One call on one media replica: from Twilio's `start` to the end of the stream.

The parts: `TwilioLink` (the socket), `CallerInput` (audio -> STT -> turns, barge-in),
`AgentOutput` (log -> TTS -> Twilio, marks), `CallControl` (silence, duration, keys, intents).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis.exceptions import RedisError
from starlette.websockets import WebSocket, WebSocketDisconnect

from services.media.agent_speech.filler import Filler
from services.media.agent_speech.greeting_cache import GreetingCache
from services.media.agent_speech.output import AgentOutput
from services.media.agent_speech.tts_factory import make_tts
from services.media.agent_speech.tts_protocol import split_voice
from services.media.call_context import CallContext, MediaDeps
from services.media.call_control import CallControl
from services.media.caller.backlog import FRAME_MS
from services.media.caller.barge_in import BargeInOptions
from services.media.caller.input import CallerInput
from services.media.continuity.handover import caller_pause
from services.media.live_calls import LiveCalls
from services.media.pipelines import CASCADE, agent_runners
from services.media.provider_clients import speech_for_call
from services.media.recording.attach import start_recording
from services.media.recording.writer import StreamRecording
from services.media.task_teardown import await_chain, stop_tasks
from services.media.twilio import protocol as tw
from services.media.twilio.link import TwilioLink
from services.media.twilio.stream_guard import StreamGuard
from shared.bus.call_end import end_call_when_available
from shared.contract import events as ev
from shared.contract import stream_token
from shared.runtime.logs import call_sid_var, tenant_var
from shared.runtime.telemetry import context_from, tracer
from shared.speech.vad import VadModel

__all__ = ["CallSession", "MediaDeps"]

log = logging.getLogger(__name__)
_tracer = tracer(__name__)

TEARDOWN_S = 5.0
"""Longest the end of a call waits for its tasks to stop (a stuck provider never holds it)."""
END_PATIENCE_S = 10.0
"""Longest a stream's start (its claim) or its end (queued events, then `call.ended`) waits
out a Redis outage (then the stream closes 1011, or the reaper ends the call `media-lost`)."""


class CallClosed(Exception):
    """The session must end; `reason` goes to the call log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CallSession:
    """Runs one Media Stream from `start` to `stop`."""

    def __init__(self, ws: WebSocket, deps: MediaDeps, live: LiveCalls) -> None:
        self.link = TwilioLink(ws)
        self.deps = deps
        self.live = live
        self.started_mono = time.monotonic()
        self.handing_over = False
        self.superseded = False  # a newer stream took this call over: leave the log alone
        self._ctx: CallContext | None = None
        self._caller: CallerInput | None = None  # the cascade's, once serving
        self._recording: StreamRecording | None = None

    async def run(self) -> None:
        """Serve the socket until the call ends; always leaves call.ended in the log once the
        stream was accepted. Whatever goes wrong ends this socket with a code and a reason:
        an unexpected failure closes it 1011, never an ASGI traceback and no other call."""
        await self.link.ws.accept()
        try:
            await self._run()
        except Exception as exc:  # one call's failure stays in this call
            log.exception("media session failed")
            await self.link.close(1011, f"internal error: {type(exc).__name__}")
        finally:
            await self.link.close(1000, "stream ended")

    async def _run(self) -> None:
        s = self.deps.settings
        try:
            async with asyncio.timeout(s.media_start_timeout_s):
                start = await self._await_start()
        except TimeoutError:
            await self.link.close(tw.CLOSE_POLICY, f"no start within {s.media_start_timeout_s:g} s")
            return
        except tw.ProtocolError as exc:
            await self.link.close(exc.code, str(exc))
            return
        except WebSocketDisconnect:
            return
        start_at = time.time()
        try:
            token = stream_token.verify(
                s.stream_token_secret, start.call_sid, start.custom_parameters.get("token")
            )
        except stream_token.InvalidStreamToken as exc:
            log.warning("rejected media stream: %s", exc)
            await self.link.close(tw.CLOSE_POLICY, f"invalid stream token: {exc}")
            return
        call_sid_var.set(start.call_sid)
        guard = StreamGuard(
            self.deps.log.redis, s.stream_slot_groups, start.call_sid, token, s.live_stream_ttl_s
        )
        claim = await guard.claim_or_wait(END_PATIENCE_S)
        if claim.refusal is not None:
            log.warning("rejected media stream: %s", claim.refusal)
            await self.link.close(tw.CLOSE_POLICY, claim.refusal)
            return
        keep_live = asyncio.create_task(self._keep_live(guard), name="live-stream")
        try:
            await self._serve_start(start, start_at)
        finally:
            keep_live.cancel()
            await guard.release()

    async def _keep_live(self, guard: StreamGuard) -> None:
        """Refresh the live-stream marker; if a newer stream took the call over, end this one
        without writing to the call's log (the newer stream owns it now)."""
        while True:
            await asyncio.sleep(self.deps.settings.live_stream_ttl_s / 3)
            try:
                kept = await guard.refresh()
            except (RedisError, OSError) as exc:  # the marker may lapse; the next try re-sets it
                log.warning("live-stream marker not refreshed: %s", exc)
                continue
            if not kept:
                log.warning("stream superseded by a newer stream for this call")
                self.superseded = True
                await self.link.close(tw.CLOSE_POLICY, "stream superseded by a newer stream")
                return

    async def _serve_start(self, start: tw.Start, start_at: float) -> None:
        """Serve an accepted stream: the call must be known to the gateway and not over."""
        self.link.stream_sid = start.stream_sid
        history = await self.deps.log.entries(start.call_sid)
        started = next((e for _, e in history if isinstance(e, ev.CallStarted)), None)
        if started is None:
            await self.link.close(tw.CLOSE_POLICY, "unknown call")
            return
        if _has_ended(history):
            await self.link.close(tw.CLOSE_POLICY, "call already ended")
            return
        if not await self.live.take(start.call_sid, start.stream_sid, self.hand_over):
            await self.link.close(1008, "call already ended")
            return
        tenant_var.set(started.tenant_id or None)
        started, call_settings = speech_for_call(started, self.deps.settings)  # tenant's speech
        ctx = CallContext(
            deps=self.deps,
            call_sid=start.call_sid,
            stream_sid=start.stream_sid,
            started=started,
            call_settings=call_settings,
            start_received_at=start_at,
        )
        self._ctx = ctx
        self._recording = start_recording(self.link, self.deps, started, start_at)
        ctx.turn_id = max((_turn_of(e) for _, e in history), default=0)
        ctx.latest_caller_turn = max(
            (e.turn_id for _, e in history if isinstance(e, ev.TurnRequested)), default=0
        )
        with (
            self.deps.metrics.call_active(started.pipeline),
            _tracer.start_as_current_span(
                "media.stream",
                context=context_from(started.traceparent),
                attributes={
                    "call.sid": ctx.call_sid,
                    "media.replica": self.deps.replica,
                    "media.pipeline": started.pipeline,
                },
            ),
        ):
            if started.pipeline == CASCADE:
                await self._serve(ctx, history)
            else:
                await self._serve_agent(ctx, history)

    async def _serve_agent(self, ctx: CallContext, history: list[tuple[str, ev.Event]]) -> None:
        """A provider voice agent serves the call; the log gets the same events either way."""
        runner = agent_runners().get(ctx.started.pipeline)
        reason = f"unknown pipeline {ctx.started.pipeline!r}"
        await ctx.append(
            ev.StreamStarted(
                call_sid=ctx.call_sid, stream_sid=ctx.stream_sid, replica=self.deps.replica
            )
        )
        try:
            if runner is None:
                await ctx.append(
                    ev.ProviderError(call_sid=ctx.call_sid, provider="media", message=reason)
                )
                await self.link.close(1011, reason)
            else:
                reason = await runner(ctx, self.link, history)
        finally:
            await self._finish(ctx, ctx.end_reason or reason)

    async def _serve(self, ctx: CallContext, history: list[tuple[str, ev.Event]]) -> None:
        s = self.deps.settings
        greetings = self.deps.greetings if s.greeting_cache else None
        assert greetings is None or isinstance(greetings, GreetingCache)
        vad_model = self.deps.vad_model if s.vad_enabled else None
        assert vad_model is None or isinstance(vad_model, VadModel)
        provider, voice = split_voice(ctx.started.voice)
        agent = AgentOutput(
            ctx, self.link, make_tts(ctx.settings, provider, voice, self.deps.clients), greetings
        )
        control = CallControl(ctx, agent, lambda reason: self._close_stream(ctx, reason))
        caller = CallerInput(
            ctx,
            agent,
            control.caller_active,
            vad_model,
            BargeInOptions(
                min_words=ctx.knobs.barge_in_min_words,
                min_speech_ms=ctx.knobs.barge_in_min_speech_ms,
                onset_windows=s.barge_in_onset_windows,
            ),
        )
        self._caller = caller
        sub = await self.deps.mux.subscribe(
            self.deps.log.key(ctx.call_sid), after=history[-1][0], types=AgentOutput.FOLLOWS
        )
        tasks: list[asyncio.Task[None]] = []
        inbound: asyncio.Task[None] | None = None
        try:
            await ctx.append(
                ev.StreamStarted(
                    call_sid=ctx.call_sid, stream_sid=ctx.stream_sid, replica=self.deps.replica
                )
            )
            inbound = asyncio.create_task(self._inbound(ctx, caller, agent, control))
            greeted = any(isinstance(e, ev.AgentText) for _, e in history)
            done_greeting = await agent.greet_from_cache(greeted)
            await agent.tts.open()
            if not done_greeting:
                await agent.greet_with_tts()
            if greeted:  # resumed: say what the caller did not hear before the move
                await agent.resume(history)
            if not greeted:
                await ctx.latency(0, "speech_end", ctx.start_received_at)
            filler = Filler(ctx, agent, lambda: caller.hearing, greetings)
            tasks = [
                asyncio.create_task(caller.run(), name="stt"),
                asyncio.create_task(agent.follow(sub), name="follow"),
                asyncio.create_task(agent.pump(), name="tts"),
                asyncio.create_task(control.run(), name="control"),
                *([asyncio.create_task(filler.run(), name="filler")] if filler.enabled else []),
            ]
            done, _ = await asyncio.wait([inbound, *tasks], return_when=asyncio.FIRST_COMPLETED)
            finished = inbound if inbound in done else done.pop()
            if finished is not inbound:
                failure = finished.exception()
                if failure is not None:  # which task, and where: the log entry has only the text
                    log.error("call task %s failed", finished.get_name(), exc_info=failure)
                if ctx.end_reason is None:
                    ctx.end_reason = f"provider-error: {failure}" if failure else "closed"
                    await ctx.append(
                        ev.ProviderError(
                            call_sid=ctx.call_sid, provider="media", message=ctx.end_reason
                        )
                    )
                    await self.link.close(1011, "provider failure")
                inbound.cancel()
            else:
                outcome = inbound.exception()
                if isinstance(outcome, CallClosed) and ctx.end_reason is None:
                    ctx.end_reason = outcome.reason
                elif outcome is not None and not isinstance(outcome, CallClosed):
                    raise outcome
        except Exception as exc:  # a failure of ours: the caller did not hang up
            if ctx.end_reason is None:
                ctx.end_reason = f"{ev.MEDIA_ERROR}: {type(exc).__name__}"[:64]
            raise
        finally:
            if inbound is not None and ctx.end_reason is None and inbound.done():
                outcome = None if inbound.cancelled() else inbound.exception()
                if isinstance(outcome, CallClosed):
                    ctx.end_reason = outcome.reason
            if inbound is not None and not inbound.done():
                inbound.cancel()
            await caller.close(drain=not self.handing_over)
            for task in await stop_tasks(tasks, TEARDOWN_S):
                log.error(
                    "task %s ignored cancellation, awaiting: %s",
                    task.get_name(),
                    " -> ".join(await_chain(task)),
                )
            await self.deps.mux.unsubscribe(sub)
            with contextlib.suppress(OSError, RuntimeError):
                await agent.tts.close()
            await self._meter_usage(ctx, caller, agent)
            await self._finish(ctx, ctx.end_reason or "caller-hangup")

    async def _finish(self, ctx: CallContext, reason: str) -> None:
        """The stream's last entries: `call.ended` (unless the call moves to another replica),
        then `stream.ended`, which after-stream waits for; then the live key goes. A stream
        that a newer stream superseded leaves the log alone: the newer stream owns the call."""
        try:
            if self._recording is not None:  # stored before call.ended: the recorder finishes it
                await self._recording.close()
            if self.superseded:
                log.info("superseded stream ends without call.ended (%s)", reason)
                return
            if not self.handing_over:
                ended = ev.CallEnded(
                    call_sid=ctx.call_sid,
                    tenant_id=ctx.started.tenant_id,
                    reason=reason,
                    duration_s=round(time.monotonic() - self.started_mono, 3),
                )
                if ctx.appends is not None:  # what a blip queued goes before the end
                    await ctx.appends.drain(END_PATIENCE_S)
                await end_call_when_available(self.deps.log, ended, END_PATIENCE_S)
            await ctx.append(
                ev.StreamEnded(
                    call_sid=ctx.call_sid,
                    stream_sid=ctx.stream_sid,
                    replica=self.deps.replica,
                    reason="handover" if self.handing_over else reason,
                    handover=self.handing_over,
                )
            )
        finally:
            await self.live.release(ctx.call_sid)

    async def hand_over(self) -> None:
        """Drain: end this stream at a pause of the caller's (`handover`), so that Twilio
        resumes the call on another replica."""
        link = self.link
        await caller_pause(lambda: link.closed, lambda: bool(self._caller and self._caller.hearing))
        if self.link.closed or (self._ctx is not None and self._ctx.end_reason is not None):
            return  # the call ended (or is ending) by itself meanwhile
        self.handing_over = True
        if self._ctx is not None:
            self._ctx.end_reason = "handover"
        await self.link.close(1000, "moving to another media replica")

    async def _meter_usage(self, ctx: CallContext, caller: CallerInput, agent: AgentOutput) -> None:
        """Usage of this stream: caller audio written to STT (20 ms frames, resends included)
        and text sent to the TTS provider of this number's voice."""
        voice_provider, _ = split_voice(ctx.started.voice)  # 'local' for a tenant on local speech
        tts_provider = ctx.settings.tts_provider if voice_provider == "deepgram" else voice_provider
        stt_seconds = round(caller.frames_sent * FRAME_MS / 1000, 3)
        for provider, metric, quantity in (
            (ctx.settings.stt_provider, "stt_seconds", stt_seconds),
            (tts_provider, "tts_characters", float(agent.characters_synthesized)),
        ):
            if quantity > 0:
                await ctx.append(
                    ev.Usage(
                        call_sid=ctx.call_sid, provider=provider, metric=metric, quantity=quantity
                    )
                )

    async def _close_stream(self, ctx: CallContext, reason: str) -> None:
        """End the stream ourselves (Twilio then asks the gateway's after-stream URL)."""
        ctx.end_reason = reason
        await self.link.close(1000, reason)

    async def _await_start(self) -> tw.Start:
        while True:
            message = tw.parse(await self.link.receive())
            if isinstance(message, tw.Start):
                return message
            if isinstance(message, tw.Media | tw.Mark | tw.Dtmf):
                raise tw.ProtocolError(f"{type(message).__name__.lower()} before start")
            if isinstance(message, tw.Stop):
                raise tw.ProtocolError("stop before start")

    async def _inbound(
        self, ctx: CallContext, caller: CallerInput, agent: AgentOutput, control: CallControl
    ) -> None:
        try:
            while True:
                message = tw.parse(await self.link.receive())
                if isinstance(message, tw.Media):
                    self.link.heard(message)
                    await caller.on_frame(message.payload)
                elif isinstance(message, tw.Mark):
                    await agent.on_mark(message.name)
                elif isinstance(message, tw.Dtmf):
                    await control.on_dtmf(message.digit)
                elif isinstance(message, tw.Stop):
                    await self.link.close(1000, "stream stopped")
                    raise CallClosed("caller-hangup")
                elif isinstance(message, tw.Start):
                    raise tw.ProtocolError("duplicate start")
                elif isinstance(message, tw.Unknown):
                    log.info("ignoring unknown Twilio event %s", message.event)
        except tw.ProtocolError as exc:
            await self.link.close(exc.code, str(exc))
            raise CallClosed(f"protocol-error: {exc}") from exc
        except WebSocketDisconnect as exc:
            raise CallClosed(ctx.end_reason or "twilio-disconnected") from exc


def _has_ended(history: list[tuple[str, ev.Event]]) -> bool:
    """The call ended after its last stream began (or before any stream began): a stream
    must not reopen it. A media replica that died wrote no call.ended: that call resumes."""
    last_stream = max(
        (i for i, (_, e) in enumerate(history) if isinstance(e, ev.StreamStarted)), default=-1
    )
    return any(isinstance(e, ev.CallEnded) for _, e in history[last_stream + 1 :])


def _turn_of(event: ev.Event) -> int:
    """The turn id an event belongs to (0 if none)."""
    turn_id = getattr(event, "turn_id", 0)
    return turn_id if isinstance(turn_id, int) else 0
