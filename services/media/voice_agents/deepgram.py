"""The `deepgram-agent` pipeline: Deepgram's Voice Agent serves the call, media relays.

Caller audio (µ-law 8 kHz) goes to the agent untouched - queued while the socket connects, so
the agent's audio clock equals Twilio's; agent audio goes to Twilio with a mark per utterance
(`AgentSpeech`). Agent messages become the cascade's events: ConversationText -> turn.requested
(never published to the brain) / agent.text; UserStartedSpeaking -> clear + caller.barge_in;
A turn.requested another service wrote (the voicemail cue) -> InjectUserMessage.
FunctionCallRequest -> tool.requested on the tools stream -> the tool.result from the call log
-> FunctionCallResponse. A `call.intent` from the tools (end_call, transfer_to_human) closes
the stream once the agent's next words were heard. When the agent fails or disconnects, the
call ends gracefully: provider.error, an apology in our own TTS voice, then a transfer intent
(the number has a transfer target) or an end intent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from contextlib import AsyncExitStack
from typing import Any

from deepgram.agent.v1.types.agent_v1agent_audio_done import AgentV1AgentAudioDone
from deepgram.agent.v1.types.agent_v1agent_started_speaking import AgentV1AgentStartedSpeaking
from deepgram.agent.v1.types.agent_v1conversation_text import AgentV1ConversationText
from deepgram.agent.v1.types.agent_v1error import AgentV1Error
from deepgram.agent.v1.types.agent_v1function_call_request import AgentV1FunctionCallRequest
from deepgram.agent.v1.types.agent_v1inject_user_message import AgentV1InjectUserMessage
from deepgram.agent.v1.types.agent_v1send_function_call_response import (
    AgentV1SendFunctionCallResponse,
)
from deepgram.agent.v1.types.agent_v1settings_applied import AgentV1SettingsApplied
from deepgram.agent.v1.types.agent_v1user_started_speaking import AgentV1UserStartedSpeaking
from deepgram.agent.v1.types.agent_v1warning import AgentV1Warning
from starlette.websockets import WebSocketDisconnect

from services.media.agent_speech.tts_factory import make_tts
from services.media.agent_speech.tts_protocol import split_voice
from services.media.call_context import CallContext
from services.media.twilio import protocol as tw
from services.media.twilio.link import TwilioLink
from services.media.voice_agents.deepgram_env import deepgram_client
from services.media.voice_agents.deepgram_settings import settings_message
from services.media.voice_agents.deepgram_speech import AgentSpeech
from services.media.voice_agents.resume import resumed_from
from shared.bus.mux import Subscription
from shared.bus.waiting import wait_event, within
from shared.contract import events as ev
from shared.contract import keys

log = logging.getLogger(__name__)

PROVIDER = "deepgram-agent"
FAREWELL_TIMEOUT_S = 15.0
"""Longest the last words (goodbye, apology) may take to be heard before the line closes."""
END_REASON_MAX = 64
"""calls.end_reason is varchar(64); the full failure goes to provider.error."""
TOOL_TIMEOUT_TEXT = '{"error": "The system did not answer in time. Please try again."}'


class AgentFailed(Exception):
    """The Voice Agent failed or went away; the message goes to provider.error."""


async def run_deepgram_agent(
    ctx: CallContext, link: TwilioLink, history: list[tuple[str, ev.Event]]
) -> str:
    """AgentRunner for `deepgram-agent` (see services/media/pipelines.py)."""
    return await DeepgramAgentCall(ctx, link, history).run()


class DeepgramAgentCall:
    """One call served by the Deepgram Voice Agent."""

    def __init__(
        self, ctx: CallContext, link: TwilioLink, history: list[tuple[str, ev.Event]]
    ) -> None:
        self.ctx = ctx
        self.link = link
        self.after = history[-1][0]
        self.resumed = resumed_from(history)
        self.speech = AgentSpeech(ctx, link)
        self.caller_audio: asyncio.Queue[bytes] = asyncio.Queue()
        self.turn_id = 0  # the greeting is turn 0, then each caller utterance opens a turn
        self.results: dict[str, asyncio.Future[ev.ToolResult]] = {}
        self.intent: ev.CallIntent | None = None
        self.intent_seen = asyncio.Event()
        self.conn: Any = None
        self.connected_at: float | None = None
        self.last_audio_sent = time.monotonic()
        self.tool_tasks: set[asyncio.Task[None]] = set()
        self.own_turns: set[tuple[int, str]] = set()  # turn.requested this stream wrote

    async def run(self) -> str:
        """Serve the call; returns the end reason (call.ended is written by the session)."""
        sub = await self.ctx.deps.mux.subscribe(
            self.ctx.deps.log.key(self.ctx.call_sid), self.after
        )
        if self.resumed.greeted:  # moved here: what the agent says first is a turn of its own
            self.turn_id = self.ctx.next_turn() if self.resumed.unheard else self.ctx.turn_id
        else:
            await self.ctx.latency(0, "speech_end", self.ctx.start_received_at)
        twilio = asyncio.create_task(self._twilio(), name="twilio")
        agent = asyncio.create_task(self._agent(), name="agent")
        follow = asyncio.create_task(self._follow(sub), name="follow")
        farewell = asyncio.create_task(self._close_after_intent(), name="intent")
        try:
            done, _ = await asyncio.wait({twilio, agent, farewell}, return_when="FIRST_COMPLETED")
            if twilio in done:
                return twilio.result()
            if farewell in done:
                return farewell.result()
            failure = agent.exception() or AgentFailed("the agent closed the connection")
            return await self._fail_gracefully(failure, twilio)
        finally:
            for task in (twilio, agent, follow, farewell, *self.tool_tasks):
                task.cancel()
            await asyncio.gather(twilio, agent, follow, farewell, return_exceptions=True)
            await self.ctx.deps.mux.unsubscribe(sub)
            await self._meter()

    # ---- Twilio -> agent -----------------------------------------------------------------
    async def _twilio(self) -> str:
        """Caller frames until the call ends; returns the end reason."""
        try:
            while True:
                message = tw.parse(await self.link.receive())
                if isinstance(message, tw.Media):
                    self.link.heard(message)
                    self.caller_audio.put_nowait(message.payload)
                elif isinstance(message, tw.Mark):
                    await self.speech.on_mark(message.name)
                elif isinstance(message, tw.Dtmf):
                    await self.ctx.append(ev.Dtmf(call_sid=self.ctx.call_sid, digit=message.digit))
                elif isinstance(message, tw.Stop):
                    return "caller-hangup"
                elif isinstance(message, tw.Start):
                    raise tw.ProtocolError("duplicate start")
        except tw.ProtocolError as exc:
            await self.link.close(exc.code, str(exc))
            return f"protocol-error: {exc}"
        except WebSocketDisconnect:
            return self.ctx.end_reason or "twilio-disconnected"

    async def _send_audio(self) -> None:
        while True:
            chunk = await self.caller_audio.get()
            await self.conn.send_media(chunk)
            self.last_audio_sent = time.monotonic()

    async def _keep_alive(self) -> None:
        """KeepAlive whenever no caller audio went to the agent for a while."""
        period = self.ctx.settings.deepgram_agent_keepalive_s
        while True:
            await asyncio.sleep(max(period - (time.monotonic() - self.last_audio_sent), 0.05))
            if time.monotonic() - self.last_audio_sent >= period:
                await self.conn.send_keep_alive()
                self.last_audio_sent = time.monotonic()

    # ---- the agent socket ----------------------------------------------------------------
    async def _agent(self) -> None:
        """Connect, configure, then relay agent messages until the socket ends (a failure)."""
        s = self.ctx.settings
        client = deepgram_client(s.deepgram_api_key, s.deepgram_agent_url)
        async with AsyncExitStack() as stack:
            try:
                async with asyncio.timeout(s.deepgram_agent_connect_timeout_s):
                    self.conn = await stack.enter_async_context(client.agent.v1.connect())
                    settings = settings_message(self.ctx.started, s, self.resumed)
                    await self.conn.send_settings(settings)
                    await self._await_settings_applied()
            except TimeoutError as exc:
                raise AgentFailed("no SettingsApplied in time") from exc
            self.connected_at = time.monotonic()
            pumps = [
                asyncio.create_task(self._send_audio()),
                asyncio.create_task(self._keep_alive()),
            ]
            try:
                async for message in self.conn:
                    await self._on_message(message)
                for pump in pumps:
                    if pump.done() and pump.exception() is not None:
                        raise AgentFailed(f"sending to the agent failed: {pump.exception()}")
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        raise AgentFailed("the agent closed the connection")

    async def _await_settings_applied(self) -> None:
        while True:
            message = await self.conn.recv()
            if isinstance(message, AgentV1SettingsApplied):
                return
            if isinstance(message, AgentV1Error):
                raise AgentFailed(f"{message.code}: {message.description}")

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, bytes):
            await self.speech.audio(self.turn_id, message)
        elif isinstance(message, AgentV1ConversationText):
            await self._conversation_text(message.role, message.content)
        elif isinstance(message, AgentV1UserStartedSpeaking):
            await self.speech.barge_in("UserStartedSpeaking", time.time())
        elif isinstance(message, AgentV1AgentStartedSpeaking):
            self.speech.start(self.turn_id)
            if self.turn_id > 0:  # the agent's own measure of this turn's response time
                started = time.time() - float(message.total_latency)
                await self.ctx.latency(self.turn_id, "speech_end", started)
        elif isinstance(message, AgentV1AgentAudioDone):
            await self.speech.done()
        elif isinstance(message, AgentV1FunctionCallRequest):
            for function in message.functions:
                if function.client_side:
                    task = asyncio.create_task(
                        self._function(self.turn_id, function.id, function.name, function.arguments)
                    )
                    self.tool_tasks.add(task)
                    task.add_done_callback(self.tool_tasks.discard)
        elif isinstance(message, AgentV1Error):
            await self._provider_error(f"{message.code}: {message.description}")
        elif isinstance(message, AgentV1Warning):
            log.warning("voice agent warning %s: %s", message.code, message.description)
        elif isinstance(message, dict):
            log.info("ignoring unknown voice agent message %s", message.get("type"))

    async def _conversation_text(self, role: str, content: str) -> None:
        if role == "user":
            self.turn_id = self.ctx.next_turn()
            self.ctx.latest_caller_turn = self.turn_id
            self.own_turns.add((self.turn_id, content))
            await self.ctx.latency(self.turn_id, "stt_final", time.time())
            await self.ctx.append(
                ev.TurnRequested(call_sid=self.ctx.call_sid, turn_id=self.turn_id, text=content)
            )
        elif content.strip():
            await self.speech.text(self.turn_id, content)

    async def _provider_error(self, message: str) -> None:
        await self.ctx.append(
            ev.ProviderError(call_sid=self.ctx.call_sid, provider=PROVIDER, message=message[:500])
        )

    # ---- function calls ------------------------------------------------------------------
    async def _function(self, turn_id: int, call_id: str, name: str, arguments: str) -> None:
        """One client-side function: the tools service runs it; its result goes back."""
        waiter: asyncio.Future[ev.ToolResult] = asyncio.get_running_loop().create_future()
        self.results[call_id] = waiter
        entry = await self.ctx.append(
            ev.ToolRequested(
                call_sid=self.ctx.call_sid,
                turn_id=turn_id,
                tool_call_id=call_id,
                name=name,
                arguments=arguments,
            )
        )
        await self.ctx.deps.log.publish(
            keys.TOOLS, {"call_sid": self.ctx.call_sid, "entry_id": entry, "tool_call_id": call_id}
        )
        try:
            content = (await within(waiter, self.ctx.settings.tool_timeout_s)).content
        except TimeoutError:
            content = TOOL_TIMEOUT_TEXT
            await self.ctx.append(
                ev.ToolResult(
                    call_sid=self.ctx.call_sid,
                    turn_id=turn_id,
                    tool_call_id=call_id,
                    name=name,
                    ok=False,
                    content=content,
                )
            )
        finally:
            self.results.pop(call_id, None)
        response = AgentV1SendFunctionCallResponse(id=call_id, name=name, content=content)
        await self.conn.send_function_call_response(response)

    async def _follow(self, sub: Subscription) -> None:
        """Tool results and call intents the tools service writes to the call log."""
        async for _, event in sub:
            if isinstance(event, ev.ToolResult):
                waiter = self.results.get(event.tool_call_id)
                if waiter is not None and not waiter.done():
                    waiter.set_result(event)
            elif isinstance(event, ev.CallIntent) and self.intent is None:
                self.intent = event
                self.intent_seen.set()
            elif isinstance(event, ev.TurnRequested):
                if (event.turn_id, event.text) not in self.own_turns:
                    await self._typed_turn(event)

    async def _typed_turn(self, event: ev.TurnRequested) -> None:
        """A turn another service wrote (the voicemail cue): InjectUserMessage, and what the
        agent answers belongs to that turn."""
        self.turn_id = event.turn_id
        self.ctx.turn_id = max(self.ctx.turn_id, event.turn_id)
        self.ctx.latest_caller_turn = event.turn_id
        if self.conn is not None:
            await self.conn.send_inject_user_message(AgentV1InjectUserMessage(content=event.text))

    async def _close_after_intent(self) -> str:
        """After end_call / transfer_to_human: let the agent's next words be heard, then close."""
        await self.intent_seen.wait()
        assert self.intent is not None
        played_at_intent = self.speech.played
        deadline = time.monotonic() + FAREWELL_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.speech.played > played_at_intent and not self.speech.busy:
                break
            self.speech.changed.clear()
            await wait_event(self.speech.changed, max(deadline - time.monotonic(), 0))
        reason = "transfer" if self.intent.kind == "transfer" else "agent-ended"
        self.ctx.end_reason = reason
        await self.link.close(1000, reason)
        return reason

    # ---- failure -------------------------------------------------------------------------
    async def _fail_gracefully(self, failure: BaseException, twilio: asyncio.Task[str]) -> str:
        """provider.error, an apology in our own voice, then transfer or end."""
        message = f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
        log.warning("voice agent failed: %s", message)
        await self._provider_error(message)
        reason = f"provider-error: {PROVIDER} {type(failure).__name__}"[:END_REASON_MAX]
        self.ctx.end_reason = reason
        if twilio.done() or self.link.closed:
            return reason
        s, started = self.ctx.settings, self.ctx.started
        target = started.transfer_number
        await self.speech.barge_in("provider-failure", time.time())
        turn_id = self.ctx.next_turn()
        text = s.agent_failure_transfer_text if target else s.agent_failure_text
        tts = make_tts(s, *split_voice(started.voice))
        try:
            heard = await self.speech.say_with(tts, turn_id, text, FAREWELL_TIMEOUT_S)
        except Exception as exc:  # any TTS failure: the after-stream TwiML still apologizes
            log.warning("apology TTS failed: %s", exc)
            heard = False
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                await tts.close()
        await self.ctx.append(
            ev.CallIntent(
                call_sid=self.ctx.call_sid,
                kind="transfer" if target else "end",
                target=target,
                reason=f"voice agent failed (apology heard: {heard})",
                turn_id=turn_id,
            )
        )
        await self.link.close(1000, "transfer" if target else "agent-ended")
        return reason

    async def _meter(self) -> None:
        if self.connected_at is None:
            return
        seconds = round(time.monotonic() - self.connected_at, 3)
        await self.ctx.append(
            ev.Usage(
                call_sid=self.ctx.call_sid,
                provider=PROVIDER,
                metric="agent_seconds",
                quantity=seconds,
            )
        )
