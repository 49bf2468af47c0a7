"""The `elevenlabs-agent` pipeline: bridge a Twilio Media Stream to an ElevenLabs
Conversational AI agent, writing the same call-log events as the cascade.

Mapping (protocol: services/media/voice_agents/elevenlabs_convai.py):
* Twilio `media` -> `user_audio_chunk` (µ-law 8 kHz unchanged; frames that arrive while the
  agent socket connects are queued, so the agent's audio clock equals Twilio's).
* `agent_response` -> `AgentText` of the current turn (turn 0 = greeting, else the caller turn
  it answers); its `audio` (one `event_id` per response) -> Twilio media. A response's audio
  is one segment: it ends when another response, a transcript, a tool call or an interruption
  arrives, or after `SEGMENT_GAP_S` without audio; then `SegmentSent` + a Twilio mark, whose
  echo becomes `SegmentPlayed` (cleared when a `clear` dropped it).
* `interruption` -> Twilio `clear` + `BargeIn` (heard text from the mark echoes); audio of an
  interrupted `event_id` that still arrives is dropped (as the SDK does).
* `user_transcript` -> `TurnRequested` (not published to the brain's work stream).
* `client_tool_call` -> `ToolRequested` + the tools stream; the `ToolResult` from the call log
  -> `client_tool_result` (an error result after `tool_timeout_s`).
* A `TurnRequested` another service wrote (the gateway's voicemail cue after an answering
  machine's beep) -> `user_message`, answered in that turn.
* `ping` -> `pong`. A `CallIntent` (end_call / transfer_to_human) ends the stream once the
  agent's answer has played. Provider failures -> `ProviderError` and the stream closes 1011,
  so the gateway's after-stream transfers the caller or apologizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidHandshake

from services.media.call_context import FRAME_MS, CallContext
from services.media.twilio import protocol as tw
from services.media.twilio.link import TwilioLink
from services.media.voice_agents import elevenlabs_convai as el
from services.media.voice_agents.playout import AgentPlayout
from services.media.voice_agents.resume import resumed_from
from shared.bus.mux import Subscription
from shared.bus.waiting import within
from shared.contract import events as ev
from shared.contract import keys

log = logging.getLogger(__name__)

INTENT_QUIET_S = 1.5
"""After an end/transfer intent: agent silence (all audio played) that ends the stream."""
INTENT_MAX_WAIT_S = 20.0
"""Longest an intent waits for the agent's last words."""


async def run_elevenlabs_agent(
    ctx: CallContext, link: TwilioLink, history: list[tuple[str, ev.Event]]
) -> str:
    """AgentRunner for `elevenlabs-agent` (see services/media/pipelines.py)."""
    return await ElevenLabsAgentCall(ctx, link, history).run()


class ElevenLabsAgentCall:
    """One call served by an ElevenLabs agent."""

    def __init__(
        self, ctx: CallContext, link: TwilioLink, history: list[tuple[str, ev.Event]]
    ) -> None:
        self.ctx = ctx
        self.link = link
        self.history = history
        self.ws: ClientConnection | None = None
        self.early_audio: list[bytes] = []
        self.ready = False
        self.frames = 0
        self.audio = AgentPlayout(ctx, link, history)
        self.tool_waiters: dict[str, asyncio.Future[ev.ToolResult]] = {}
        self.background: set[asyncio.Task[None]] = set()
        self.own_turns: set[tuple[int, str]] = set()  # turn.requested this stream wrote

    async def run(self) -> str:
        ctx = self.ctx
        sub = await ctx.deps.mux.subscribe(
            ctx.deps.log.key(ctx.call_sid), after=self.history[-1][0]
        )
        tasks = [asyncio.create_task(self._twilio_in(), name="twilio")]
        try:
            try:
                self.ws = await within(
                    self._connect(), ctx.settings.elevenlabs_agent_connect_timeout_s
                )
            except (el.ConvaiError, OSError, InvalidHandshake, TimeoutError) as exc:
                return await self._fail(f"connect: {type(exc).__name__}: {exc}")
            tasks += [
                asyncio.create_task(self._provider_in(self.ws), name="provider"),
                asyncio.create_task(self._follow(sub), name="follow"),
                asyncio.create_task(self._max_duration(), name="max-duration"),
            ]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finished = done.pop()
            failure = finished.exception()
            if failure is not None:
                return await self._fail(f"{type(failure).__name__}: {failure}")
            reason: str = finished.result()
            return ctx.end_reason or reason
        finally:
            self.audio.close()
            for task in [*tasks, *self.background]:
                task.cancel()
            await asyncio.gather(*tasks, *self.background, return_exceptions=True)
            if self.ws is not None:
                with contextlib.suppress(OSError, ConnectionClosed):
                    await self.ws.close()
            await ctx.deps.mux.unsubscribe(sub)
            await self._meter()

    # ---------------------------------------------------------------- connection
    async def _connect(self) -> ClientConnection:
        s = self.ctx.settings
        tls = el.ssl_context(s)
        url = await el.conversation_url(s, tls)
        ws = await connect(
            url,
            ssl=tls if url.startswith("wss:") else None,
            max_size=el.MAX_MESSAGE_BYTES,
            open_timeout=s.elevenlabs_agent_connect_timeout_s,
        )
        resumed = resumed_from(self.history)
        await ws.send(
            json.dumps(
                el.initiation(
                    self.ctx.started,
                    self.ctx.call_sid,
                    resumed,
                    s.elevenlabs_agent_outbound_tool_ids,
                )
            )
        )
        if not resumed.greeted:
            await self.ctx.latency(0, "speech_end", self.ctx.start_received_at)
        while self.early_audio:  # no await between the last check and `ready`
            await ws.send(el.audio_chunk(self.early_audio.pop(0)))
        self.ready = True
        return ws

    async def _fail(self, message: str) -> str:
        """Record a provider failure and end the stream; after-stream transfers or apologizes."""
        reason = f"provider-error: {message}"
        log.warning("elevenlabs agent failed for %s: %s", self.ctx.call_sid, message)
        await self.ctx.append(
            ev.ProviderError(call_sid=self.ctx.call_sid, provider=el.PROVIDER, message=message)
        )
        self.ctx.end_reason = self.ctx.end_reason or reason
        await self.link.close(1011, "provider failure")
        return reason

    # -------------------------------------------------------------------- Twilio
    async def _twilio_in(self) -> str:
        while True:
            try:
                message = tw.parse(await self.link.receive())
            except WebSocketDisconnect:
                return self.ctx.end_reason or "twilio-disconnected"
            except tw.ProtocolError as exc:
                await self.link.close(exc.code, str(exc))
                return f"protocol-error: {exc}"
            if isinstance(message, tw.Media):
                self.link.heard(message)
                self.frames += 1
                await self._send_audio(message.payload)
            elif isinstance(message, tw.Mark):
                await self.audio.on_mark(message.name)
            elif isinstance(message, tw.Dtmf):
                await self.ctx.append(ev.Dtmf(call_sid=self.ctx.call_sid, digit=message.digit))
            elif isinstance(message, tw.Stop):
                return "caller-hangup"
            elif isinstance(message, tw.Start):
                await self.link.close(1008, "duplicate start")
                return "protocol-error: duplicate start"

    async def _send_audio(self, payload: bytes) -> None:
        if not self.ready or self.ws is None:
            self.early_audio.append(payload)
            return
        with contextlib.suppress(ConnectionClosed):  # the provider task reports the close
            await self.ws.send(el.audio_chunk(payload))

    # ------------------------------------------------------------------ provider
    async def _provider_in(self, ws: ClientConnection) -> str:
        try:
            async for frame in ws:
                await self._on_message(ws, el.parse(frame))
        except ConnectionClosedOK:
            pass
        except ConnectionClosed as exc:
            raise el.ConvaiError(f"agent socket closed: {exc}") from exc
        code = ws.close_code
        if code not in (None, 1000):
            raise el.ConvaiError(f"agent closed the conversation: {code} {ws.close_reason}")
        await self.audio.finish_segment()
        await self.audio.drain(INTENT_MAX_WAIT_S)
        self.ctx.end_reason = self.ctx.end_reason or "agent-ended"
        await self.link.close(1000, "agent-ended")
        return "agent-ended"

    async def _on_message(self, ws: ClientConnection, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "conversation_initiation_metadata":
            meta = el.event_of(message, "conversation_initiation_metadata_event")
            for key in ("agent_output_audio_format", "user_input_audio_format"):
                if meta.get(key, el.AUDIO_FORMAT) != el.AUDIO_FORMAT:
                    raise el.ConvaiError(f"agent {key} is {meta.get(key)}, need ulaw_8000")
        elif kind == "audio":
            event = el.event_of(message, "audio_event")
            await self.audio.on_audio(_int(event.get("event_id")), str(event.get("audio_base_64")))
        elif kind == "agent_response":
            text = str(el.event_of(message, "agent_response_event").get("agent_response", ""))
            await self.audio.on_agent_response(text.strip())
        elif kind == "user_transcript":
            event = el.event_of(message, "user_transcription_event")
            await self._on_user_transcript(str(event.get("user_transcript", "")).strip())
        elif kind == "interruption":
            event_id = _int(el.event_of(message, "interruption_event").get("event_id"))
            await self.audio.on_interruption(event_id)
        elif kind == "ping":
            await ws.send(el.pong(el.event_of(message, "ping_event").get("event_id")))
        elif kind == "client_tool_call":
            call = el.event_of(message, "client_tool_call")
            task = asyncio.create_task(self._on_tool_call(ws, call))
            self.background.add(task)
            task.add_done_callback(self.background.discard)
        # agent_response_correction, vad_score, tentative texts, metadata: nothing to do

    async def _on_user_transcript(self, text: str) -> None:
        if not text:
            return
        await self.audio.finish_segment()
        ctx = self.ctx
        turn_id = ctx.next_turn()
        ctx.latest_caller_turn = turn_id
        self.own_turns.add((turn_id, text))
        await ctx.append(ev.TurnRequested(call_sid=ctx.call_sid, turn_id=turn_id, text=text))
        await ctx.latency(turn_id, "stt_final", time.time())
        self.audio.start_turn(turn_id)

    # --------------------------------------------------------------------- tools
    async def _on_tool_call(self, ws: ClientConnection, call: dict[str, Any]) -> None:
        ctx = self.ctx
        call_id, name = str(call.get("tool_call_id", "")), str(call.get("tool_name", ""))
        parameters = call.get("parameters") or {}
        await self.audio.finish_segment()
        future: asyncio.Future[ev.ToolResult] = asyncio.get_running_loop().create_future()
        self.tool_waiters[call_id] = future
        requested = ev.ToolRequested(
            call_sid=ctx.call_sid,
            turn_id=self.audio.turn_id,
            tool_call_id=call_id,
            name=name,
            arguments=json.dumps(parameters),
        )
        entry = await ctx.append(requested)
        await ctx.deps.log.publish(
            keys.TOOLS, {"call_sid": ctx.call_sid, "entry_id": entry, "tool_call_id": call_id}
        )
        try:
            result = await within(future, ctx.settings.tool_timeout_s)
        except TimeoutError:
            result = ev.ToolResult(
                call_sid=ctx.call_sid,
                turn_id=requested.turn_id,
                tool_call_id=call_id,
                name=name,
                ok=False,
                content='{"error": "The system did not answer in time. Please try again."}',
            )
            await ctx.append(result)
        finally:
            self.tool_waiters.pop(call_id, None)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(el.tool_result(call_id, result.content, not result.ok))

    async def _follow(self, sub: Subscription) -> str:
        """Tool results for waiting calls; an end/transfer intent ends the stream."""
        async for _, event in sub:
            if isinstance(event, ev.ToolResult):
                waiter = self.tool_waiters.get(event.tool_call_id)
                if waiter is not None and not waiter.done():
                    waiter.set_result(event)
            elif isinstance(event, ev.TurnRequested):
                if (event.turn_id, event.text) not in self.own_turns:
                    await self._typed_turn(event)
            elif isinstance(event, ev.CallIntent):
                reason = "transfer" if event.kind == "transfer" else "agent-ended"
                await self.audio.settle(INTENT_QUIET_S, INTENT_MAX_WAIT_S)
                self.ctx.end_reason = self.ctx.end_reason or reason
                await self.link.close(1000, reason)
                return reason
        return "call-log-closed"

    async def _typed_turn(self, event: ev.TurnRequested) -> None:
        """A turn another service wrote (the voicemail cue): the agent gets it as a typed user
        message, and what it answers belongs to that turn."""
        await self.audio.finish_segment()
        ctx = self.ctx
        ctx.turn_id = max(ctx.turn_id, event.turn_id)
        ctx.latest_caller_turn = event.turn_id
        self.audio.start_turn(event.turn_id)
        if self.ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(el.user_message(event.text))

    async def _max_duration(self) -> str:
        limit = min(self.ctx.started.max_call_s or 10**9, self.ctx.settings.max_call_s)
        await asyncio.sleep(max(limit - (time.time() - self.ctx.start_received_at), 0))
        self.ctx.end_reason = self.ctx.end_reason or "max-duration"
        await self.link.close(1000, "max-duration")
        return "max-duration"

    async def _meter(self) -> None:
        seconds = round(self.frames * FRAME_MS / 1000, 3)
        if seconds > 0:
            await self.ctx.append(
                ev.Usage(
                    call_sid=self.ctx.call_sid,
                    provider=el.PROVIDER,
                    metric="agent_seconds",
                    quantity=seconds,
                )
            )


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise el.ConvaiError(f"bad event_id {value!r}") from exc
