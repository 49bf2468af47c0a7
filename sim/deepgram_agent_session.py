"""One simulated Voice Agent conversation on one `/v1/agent/converse` socket.

The "user" side is the scripted STT engine (`sim/stt_script.py`) fed with the client's audio:
speech onset -> `UserStartedSpeaking` (and the agent's current response stops), a final
transcript -> `ConversationText{role:user}` and a new agent turn. The "think" side is a
`sim/llm_policy.Policy`: a text reply is spoken; a tool call becomes a client-side
`FunctionCallRequest` whose `FunctionCallResponse` feeds the after-tool template. Speaking =
`ConversationText{role:assistant}`, `AgentStartedSpeaking`, binary audio chunks sent faster
than real time, `AgentAudioDone` (none for a response cut by the user).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field
from starlette.websockets import WebSocket, WebSocketDisconnect

from shared.bus.waiting import within
from sim.deepgram_agent_settings import AgentSettings
from sim.deepgram_tts_audio import synthesize
from sim.llm_policy import Policy, TextDecision, ToolCallDecision, decide
from sim.stt_script import SttScriptEngine


class DeepgramAgentSimOptions(BaseModel):
    """Deepgram Voice Agent simulator settings."""

    api_key: str = Field("dg-sim", description="API key accepted in `Authorization: Token <key>`.")
    ms_per_char: float = Field(60.0, gt=0, description="Agent speech length per character.")
    chunk_ms: int = Field(100, gt=0, description="Audio per binary frame sent to the client.")
    realtime_factor: float = Field(
        4.0, ge=0, description="Agent audio is sent this many times faster than real time."
    )
    endpointing_ms: int = Field(300, ge=0, description="Silence after speech that ends a turn.")
    idle_timeout_s: float = Field(
        10.0, gt=0, description="Close after this long without audio or KeepAlive."
    )
    function_timeout_s: float = Field(
        30.0, gt=0, description="Wait for a FunctionCallResponse before giving up on it."
    )


@dataclass
class AgentSimSession:
    """What one socket did (GET /sim/agent/sessions)."""

    request_id: str
    tags: list[str] = field(default_factory=list)
    settings: AgentSettings | None = None
    engine: SttScriptEngine | None = None
    user_texts: list[str] = field(default_factory=list)
    agent_texts: list[str] = field(default_factory=list)
    function_calls: list[dict[str, Any]] = field(default_factory=list)
    responses_cut: int = 0
    keepalives: int = 0
    closed: bool = False
    close_code: int | None = None
    close_reason: str | None = None
    dropped: str | None = None
    drop: Callable[[str], None] | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "tags": self.tags,
            "audio_ms": round(self.engine.audio_ms, 3) if self.engine else 0,
            "user_texts": self.user_texts,
            "agent_texts": self.agent_texts,
            "function_calls": self.function_calls,
            "responses_cut": self.responses_cut,
            "keepalives": self.keepalives,
            "closed": self.closed,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "dropped": self.dropped,
        }


class AgentConversation:
    """Serves one socket after `SettingsApplied` until it closes."""

    def __init__(
        self,
        ws: WebSocket,
        session: AgentSimSession,
        options: DeepgramAgentSimOptions,
        policy: Callable[[], Policy],
    ) -> None:
        self.ws = ws
        self.session = session
        self.options = options
        self.policy = policy
        self.messages: list[dict[str, Any]] = []
        self.turn: asyncio.Task[None] | None = None
        self.speaking = False
        self.pending: dict[str, asyncio.Future[str]] = {}
        self._send_lock = asyncio.Lock()

    @property
    def settings(self) -> AgentSettings:
        assert self.session.settings is not None
        return self.session.settings

    # ---- sending -------------------------------------------------------------------------
    async def send_json(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.ws.send_text(json.dumps(message))

    async def send_audio(self, audio: bytes) -> None:
        async with self._send_lock:
            await self.ws.send_bytes(audio)

    async def close(self, code: int, reason: str) -> None:
        self.session.close_code, self.session.close_reason = code, reason
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.ws.close(code, reason)

    # ---- the conversation ----------------------------------------------------------------
    async def run(self) -> None:
        """Greeting first, then client frames until the socket closes."""
        if self.settings.greeting:
            self._start_turn(self._speak(self.settings.greeting))
        try:
            await self._receive_loop()
        finally:
            if self.turn is not None:
                self.turn.cancel()
                await asyncio.gather(self.turn, return_exceptions=True)

    async def _receive_loop(self) -> None:
        engine = self.session.engine
        assert engine is not None
        while True:
            try:
                msg = await within(self.ws.receive(), self.options.idle_timeout_s)
            except TimeoutError:
                await self.close(1011, "idle: no audio or KeepAlive received")
                return
            if msg["type"] == "websocket.disconnect":
                return
            if self.session.dropped is not None:
                continue
            data: bytes | None = msg.get("bytes")
            if data is not None:
                for result in engine.feed(data):
                    await self._on_stt(result)
                continue
            if not await self._on_control(msg.get("text") or ""):
                return

    async def _on_stt(self, message: dict[str, Any]) -> None:
        if message["type"] == "SpeechStarted":
            await self.send_json({"type": "UserStartedSpeaking"})
            if self.speaking and self.turn is not None:
                self.session.responses_cut += 1
                self.turn.cancel()
        elif message["type"] == "Results" and message.get("speech_final"):
            text = message["channel"]["alternatives"][0]["transcript"]
            self.session.user_texts.append(text)
            await self.send_json({"type": "ConversationText", "role": "user", "content": text})
            self.messages.append({"role": "user", "content": text})
            self._start_turn(self._think())

    async def _on_control(self, text: str) -> bool:
        """Handle a JSON client message; False when the socket was closed because of it."""
        try:
            payload = json.loads(text)
        except json.JSONDecodeError:
            payload = None
        kind = payload.get("type") if isinstance(payload, dict) else None
        if kind == "KeepAlive":
            self.session.keepalives += 1
        elif kind == "FunctionCallResponse" and isinstance(payload, dict):
            future = self.pending.get(str(payload.get("id")))
            if future is None or future.done():
                await self._warn("UNKNOWN_FUNCTION_CALL", "no pending function call with that id")
            else:
                future.set_result(str(payload.get("content", "")))
        elif kind == "InjectAgentMessage" and isinstance(payload, dict):
            if self.speaking or (payload.get("behavior") in (None, "default") and self._busy()):
                await self.send_json(
                    {"type": "InjectionRefused", "message": "Agent is currently speaking"}
                )
            else:
                self._start_turn(self._speak(str(payload.get("message", ""))))
        elif kind == "InjectUserMessage" and isinstance(payload, dict):
            if self.speaking:  # simulator choice: refused while the agent talks
                await self.send_json(
                    {"type": "InjectionRefused", "message": "Agent is currently speaking"}
                )
            else:
                self.messages.append({"role": "user", "content": str(payload.get("content", ""))})
                self._start_turn(self._think())
        elif kind == "UpdatePrompt":
            await self.send_json({"type": "PromptUpdated"})
        elif kind == "Settings":
            await self._fail("SETTINGS_ALREADY_APPLIED", "Settings can only be sent once")
            return False
        else:
            await self._fail("UNPARSABLE_CLIENT_MESSAGE", f"unsupported client message {kind!r}")
            return False
        return True

    def _busy(self) -> bool:
        return self.turn is not None and not self.turn.done()

    async def _warn(self, code: str, description: str) -> None:
        await self.send_json({"type": "Warning", "code": code, "description": description})

    async def _fail(self, code: str, description: str) -> None:
        await self.send_json({"type": "Error", "code": code, "description": description})
        await self.close(1008, code)

    def _start_turn(self, work: Any) -> None:
        if self.turn is not None:
            self.turn.cancel()
        self.turn = asyncio.create_task(work)

    # ---- think ---------------------------------------------------------------------------
    async def _think(self) -> None:
        for _ in range(4):  # bounded function-call rounds per user turn
            decision = decide(self.policy(), self.messages, self.settings.openai_tools())
            if isinstance(decision, TextDecision):
                await self._speak(decision.text)
                return
            if not isinstance(decision, ToolCallDecision):  # a scripted provider failure
                await self._fail("FAILED_TO_THINK", decision.error.message)
                return
            content = await self._call_function(decision)
            if content is None:
                return
        await self._speak(self.policy().fallback)

    async def _call_function(self, decision: ToolCallDecision) -> str | None:
        call_id = f"fc_{uuid.uuid4().hex}"
        arguments = decision.arguments_json
        await self.send_json({"type": "AgentThinking", "content": f"Calling {decision.name}."})
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.pending[call_id] = future
        request = {
            "id": call_id,
            "name": decision.name,
            "arguments": arguments,
            "client_side": True,
        }
        self.session.function_calls.append(dict(request))
        await self.send_json({"type": "FunctionCallRequest", "functions": [request]})
        try:
            content = await within(future, self.options.function_timeout_s)
        except TimeoutError:
            await self._warn("FUNCTION_CALL_TIMEOUT", f"no FunctionCallResponse for {call_id}")
            return None
        finally:
            self.pending.pop(call_id, None)
        self.session.function_calls[-1]["response"] = content
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": decision.name, "arguments": arguments},
        }
        self.messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": content})
        return content

    # ---- speak ---------------------------------------------------------------------------
    async def _speak(self, text: str) -> None:
        s, o = self.settings, self.options
        self.session.agent_texts.append(text)
        self.messages.append({"role": "assistant", "content": text})
        await self.send_json({"type": "ConversationText", "role": "assistant", "content": text})
        audio = synthesize(text, o.ms_per_char, s.output_rate, s.output_encoding)
        bytes_per_chunk = max(1, s.output_rate * o.chunk_ms // 1000) * (
            2 if s.output_encoding == "linear16" else 1
        )
        self.speaking = True
        try:
            await self.send_json(
                {
                    "type": "AgentStartedSpeaking",
                    "total_latency": 0.3,
                    "tts_latency": 0.1,
                    "ttt_latency": 0.2,
                }
            )
            for i in range(0, len(audio), bytes_per_chunk):
                await self.send_audio(audio[i : i + bytes_per_chunk])
                if o.realtime_factor > 0:
                    await asyncio.sleep(o.chunk_ms / 1000 / o.realtime_factor)
            await self.send_json({"type": "AgentAudioDone"})
        finally:
            self.speaking = False
