"""One call on one media replica: from Twilio's `start` to the end of the stream.

The parts: `TwilioLink` (the socket), `CallerInput` (audio -> STT -> turns, barge-in),
`AgentOutput` (log -> TTS -> Twilio, marks), `CallControl` (silence, duration, keys, intents).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from services.media.agent_speech.greeting_cache import GreetingCache
from services.media.agent_speech.output import AgentOutput
from services.media.agent_speech.tts_factory import make_tts
from services.media.agent_speech.tts_protocol import split_voice
from services.media.call_context import CallContext, MediaDeps
from services.media.call_control import CallControl
from services.media.caller.backlog import FRAME_MS
from services.media.caller.barge_in import BargeInOptions
from services.media.caller.input import CallerInput
from services.media.caller.vad import VadModel
from services.media.pipelines import CASCADE, agent_runners
from services.media.twilio import protocol as tw
from services.media.twilio.link import TwilioLink
from shared.contract import events as ev
from shared.contract import keys, stream_token
from shared.runtime.logs import call_sid_var, tenant_var
from shared.runtime.telemetry import context_from, tracer

__all__ = ["CallSession", "MediaDeps"]

log = logging.getLogger(__name__)
_tracer = tracer(__name__)

TEARDOWN_S = 5.0
"""Longest the end of a call waits for its tasks to stop (a stuck provider never holds it)."""
RECANCEL_S = 0.5
"""A task still running this long after being cancelled is cancelled again."""


def await_chain(task: asyncio.Task[Any]) -> list[str]:
    """Where a task is suspended: each coroutine it awaits, outermost first (async generators
    are followed through their `asend` objects)."""
    chain: list[str] = []
    obj: object = task.get_coro()
    while obj is not None and len(chain) < 32:
        if type(obj).__name__ in ("async_generator_asend", "async_generator_athrow"):
            gens = [r for r in gc.get_referents(obj) if hasattr(r, "ag_frame")]
            obj = gens[0] if gens else None
            continue
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "ag_frame", None)
        frame = frame or getattr(obj, "gi_frame", None)
        if frame is None:
            chain.append(type(obj).__qualname__)
            break
        chain.append(f"{frame.f_code.co_qualname} ({frame.f_code.co_filename}:{frame.f_lineno})")
        obj = (
            getattr(obj, "cr_await", None)
            or getattr(obj, "ag_await", None)
            or getattr(obj, "gi_yieldfrom", None)
        )
    return chain


async def stop_tasks(tasks: list[asyncio.Task[None]], limit_s: float) -> list[asyncio.Task[None]]:
    """Cancel `tasks` and wait up to `limit_s` for them to end, cancelling again any task that
    swallowed a cancellation (a library catching CancelledError somewhere below us) and
    carried on; returns the tasks still running at the end."""
    deadline = time.monotonic() + limit_s
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - time.monotonic()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(left, RECANCEL_S))
        for task in pending:
            log.warning(
                "task %s carried on after a cancellation; cancelling again: %s",
                task.get_name(),
                " -> ".join(await_chain(task)),
            )
    return [t for t in tasks if t in pending]


class CallClosed(Exception):
    """The session must end; `reason` goes to the call log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CallSession:
    """Runs one Media Stream from `start` to `stop`."""

    def __init__(self, ws: WebSocket, deps: MediaDeps) -> None:
        self.link = TwilioLink(ws)
        self.deps = deps
        self.started_mono = time.monotonic()

    async def run(self) -> None:
        """Serve the socket until the call ends; always leaves call.ended in the log."""
        await self.link.ws.accept()
        try:
            start = await self._await_start()
        except (tw.ProtocolError, WebSocketDisconnect) as exc:
            await self.link.close(1008, str(exc) or "closed before start")
            return
        start_at = time.time()
        try:
            stream_token.verify(
                self.deps.settings.stream_token_secret,
                start.call_sid,
                start.custom_parameters.get("token"),
            )
        except stream_token.InvalidStreamToken as exc:
            log.warning("rejected media stream: %s", exc)
            await self.link.close(1008, f"invalid stream token: {exc}")
            return
        call_sid_var.set(start.call_sid)
        self.link.stream_sid = start.stream_sid
        history = await self.deps.log.entries(start.call_sid)
        started = next((e for _, e in history if isinstance(e, ev.CallStarted)), None)
        if started is None:
            await self.link.close(1008, "unknown call")
            return
        tenant_var.set(started.tenant_id or None)
        ctx = CallContext(
            deps=self.deps,
            call_sid=start.call_sid,
            stream_sid=start.stream_sid,
            started=started,
            start_received_at=start_at,
        )
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
            ended = ev.CallEnded(
                call_sid=ctx.call_sid,
                tenant_id=ctx.started.tenant_id,
                reason=ctx.end_reason or reason,
                duration_s=round(time.monotonic() - self.started_mono, 3),
            )
            await ctx.append(ended)
            await self.deps.log.publish(keys.CALLS, {"call_sid": ctx.call_sid, "type": ended.type})

    async def _serve(self, ctx: CallContext, history: list[tuple[str, ev.Event]]) -> None:
        s = self.deps.settings
        greetings = self.deps.greetings if s.greeting_cache else None
        assert greetings is None or isinstance(greetings, GreetingCache)
        vad_model = self.deps.vad_model if s.vad_enabled else None
        assert vad_model is None or isinstance(vad_model, VadModel)
        provider, voice = split_voice(ctx.started.voice)
        agent = AgentOutput(
            ctx, self.link, make_tts(s, provider, voice, self.deps.clients), greetings
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
            ),
        )
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
            if not greeted:
                await ctx.latency(0, "speech_end", ctx.start_received_at)
            tasks = [
                asyncio.create_task(caller.run(), name="stt"),
                asyncio.create_task(agent.follow(sub), name="follow"),
                asyncio.create_task(agent.pump(), name="tts"),
                asyncio.create_task(control.run(), name="control"),
            ]
            done, _ = await asyncio.wait([inbound, *tasks], return_when=asyncio.FIRST_COMPLETED)
            finished = inbound if inbound in done else done.pop()
            if finished is not inbound:
                failure = finished.exception()
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
        finally:
            if inbound is not None and ctx.end_reason is None and inbound.done():
                outcome = None if inbound.cancelled() else inbound.exception()
                if isinstance(outcome, CallClosed):
                    ctx.end_reason = outcome.reason
            if inbound is not None and not inbound.done():
                inbound.cancel()
            await caller.close()
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
            ended = ev.CallEnded(
                call_sid=ctx.call_sid,
                tenant_id=ctx.started.tenant_id,
                reason=ctx.end_reason or "caller-hangup",
                duration_s=round(time.monotonic() - self.started_mono, 3),
            )
            await ctx.append(ended)
            await self.deps.log.publish(keys.CALLS, {"call_sid": ctx.call_sid, "type": ended.type})

    async def _meter_usage(self, ctx: CallContext, caller: CallerInput, agent: AgentOutput) -> None:
        """Usage of this stream: caller audio written to STT (20 ms frames, resends included)
        and text sent to the TTS provider of this number's voice."""
        tts_provider, _ = split_voice(ctx.started.voice)
        for provider, metric, quantity in (
            ("deepgram", "stt_seconds", round(caller.frames_sent * FRAME_MS / 1000, 3)),
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
                    await caller.on_frame(message.payload)
                elif isinstance(message, tw.Mark):
                    await agent.on_mark(message.name)
                elif isinstance(message, tw.Dtmf):
                    await control.on_dtmf(message.digit)
                elif isinstance(message, tw.Stop):
                    raise CallClosed("caller-hangup")
                elif isinstance(message, tw.Start):
                    raise tw.ProtocolError("duplicate start")
                elif isinstance(message, tw.Unknown):
                    log.info("ignoring unknown Twilio event %s", message.event)
        except tw.ProtocolError as exc:
            await self.link.close(1008, str(exc))
            raise CallClosed(f"protocol-error: {exc}") from exc
        except WebSocketDisconnect as exc:
            raise CallClosed(ctx.end_reason or "twilio-disconnected") from exc


def _turn_of(event: ev.Event) -> int:
    """The turn id an event belongs to (0 if none)."""
    turn_id = getattr(event, "turn_id", 0)
    return turn_id if isinstance(turn_id, int) else 0
