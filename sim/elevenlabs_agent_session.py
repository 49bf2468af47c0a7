"""One simulated ElevenLabs Conversational AI conversation (the server side of one socket).

Wire contract: /work/shared/protocols/elevenlabs-convai.md. The "user" side is scripted per
call (`SttScriptEngine` over the `user_audio_chunk` audio, µ-law 8 kHz: audio time = bytes / 8);
the "think" side is a `sim.llm_policy.Policy` (rules -> text or a `client_tool_call`).

Simulator choices where the real service is unspecified:
* One `event_id` per agent response; every `audio` chunk of that response carries it, and
  `interruption.event_id` names the response being cut.
* The agent "speaks" in user-audio time: a response sent at audio time t plays until
  t + its duration. Voice onset (scripted utterance start) inside that window interrupts:
  `interruption`, then `agent_response_correction` with the words heard so far.
* A final transcript of a scripted utterance becomes `user_transcript` (endpointing 300 ms).
* A policy `error` rule closes the socket with 1011 and the error message (provider failure).
* Tools: the agent's own client tools, unless the `agent.prompt.tool_ids` override picks
  workspace tools by id instead (an unknown id closes the socket 1008).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from sim.deepgram_tts_audio import synthesize
from sim.elevenlabs_agent_config import AgentConfig, override_paths, substitute
from sim.llm_policy import ErrorDecision, Policy, TextDecision, ToolCallDecision, decide
from sim.stt_script import SttEngineOptions, SttScriptEngine

AUDIO_FORMAT = "ulaw_8000"
ULAW_BYTES_PER_MS = 8


class ConversationClosed(Exception):
    """The conversation must end with this close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class Response:
    """One agent response: its event id, text and where it sits in user-audio time."""

    event_id: int
    text: str
    start_ms: float
    audio_ms: float


@dataclass
class ConvaiSession:
    """What one socket did (exposed via GET /sim/convai/sessions)."""

    conversation_id: str
    agent_id: str
    signature: str | None
    tag: str = ""
    initiation: dict[str, Any] = field(default_factory=dict)
    transcripts: list[str] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_results: list[dict[str, Any]] = field(default_factory=list)
    interruptions: list[int] = field(default_factory=list)
    pings: int = 0
    pongs: list[int] = field(default_factory=list)
    other_messages: list[str] = field(default_factory=list)
    audio_bytes: int = 0
    close_code: int | None = None
    close_reason: str | None = None
    closed: bool = False

    def summary(self) -> dict[str, Any]:
        return {**asdict(self), "audio_ms": self.audio_bytes / ULAW_BYTES_PER_MS}


class Conversation:
    """Serves one accepted socket until either side closes."""

    def __init__(
        self,
        ws: WebSocket,
        session: ConvaiSession,
        config: AgentConfig,
        policy: Callable[[], Policy],
        on_tag: Callable[[str], None],
    ) -> None:
        self.ws = ws
        self.session = session
        self.config = config
        self.policy = policy  # read at each answer: POST /sim/convai/policy applies at once
        self.on_tag = on_tag
        self.engine = SttScriptEngine(SttEngineOptions(endpointing_ms=300, vad_events=True))
        self.variables: dict[str, Any] = {}
        self.messages: list[dict[str, Any]] = []
        self.event_id = 0
        self.speaking_until_ms = 0.0
        self.pending_tools: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.ping_sent: dict[int, float] = {}
        self.last_rtt_ms: int | None = None
        self.send_lock = asyncio.Lock()
        self.thinking: set[asyncio.Task[None]] = set()
        self.client_tools = list(config.client_tools)

    # ------------------------------------------------------------------ sending
    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_text(json.dumps(message))

    async def speak(self, text: str) -> None:
        """One agent response: agent_response, then its audio in chunks (one event id)."""
        self.event_id += 1
        event_id = self.event_id
        audio = synthesize(text, self.config.ms_per_char, 8000, "mulaw")
        now = self.engine.audio_ms
        start = max(now, self.speaking_until_ms)
        self.speaking_until_ms = start + len(audio) / ULAW_BYTES_PER_MS
        response = Response(event_id, text, start, len(audio) / ULAW_BYTES_PER_MS)
        self.session.responses.append(response)
        self.messages.append({"role": "assistant", "content": text})
        await self.send(
            {"type": "agent_response", "agent_response_event": {"agent_response": text}}
        )
        step = self.config.chunk_bytes
        for i in range(0, len(audio), step):
            if self.session.interruptions and self.session.interruptions[-1] >= event_id:
                return  # cut: the rest of this response is never sent
            chunk = base64.b64encode(audio[i : i + step]).decode("ascii")
            await self.send(
                {"type": "audio", "audio_event": {"audio_base_64": chunk, "event_id": event_id}}
            )
            await asyncio.sleep(0)

    # ---------------------------------------------------------------- lifecycle
    async def run(self) -> None:
        pinger: asyncio.Task[None] | None = None
        try:
            await self._start()
            pinger = asyncio.create_task(self._ping_loop())
            await self._receive_loop()
        except ConversationClosed as exc:
            self.session.close_code, self.session.close_reason = exc.code, exc.reason
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self.ws.close(exc.code, exc.reason)
        except WebSocketDisconnect as exc:
            self.session.close_code = exc.code
        finally:
            self.session.closed = True
            tasks = [*self.thinking, *([pinger] if pinger else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for future in self.pending_tools.values():
                future.cancel()

    async def _start(self) -> None:
        first = await self.ws.receive_text()
        data = _json_object(first)
        if data.get("type") == "conversation_initiation_client_data":
            self._initiate(data)
        else:  # optional: agent defaults, and the first frame is ordinary input
            self.session.tag = self.session.conversation_id
            await self._handle(data)
        self.on_tag(self.session.tag)
        metadata = {
            "conversation_id": self.session.conversation_id,
            "agent_output_audio_format": AUDIO_FORMAT,
            "user_input_audio_format": AUDIO_FORMAT,
        }
        await self.send(
            {
                "type": "conversation_initiation_metadata",
                "conversation_initiation_metadata_event": metadata,
            }
        )
        agent = (self.session.initiation.get("conversation_config_override") or {}).get("agent")
        agent = agent if isinstance(agent, dict) else {}
        prompt = (agent.get("prompt") or {}).get("prompt", self.config.prompt)
        self.messages.append({"role": "system", "content": substitute(str(prompt), self.variables)})
        first_message = substitute(
            str(agent.get("first_message", self.config.first_message)), self.variables
        )
        if first_message.strip():
            await self.speak(first_message)

    def _initiate(self, data: dict[str, Any]) -> None:
        self.session.initiation = data
        override = data.get("conversation_config_override") or {}
        if not isinstance(override, dict):
            raise ConversationClosed(1008, "conversation_config_override must be an object")
        refused = [p for p in override_paths(override) if p not in self.config.allowed_overrides]
        if refused:
            raise ConversationClosed(
                1008, f"Override for field '{refused[0]}' is not allowed by config."
            )
        if "agent.prompt.tool_ids" in override_paths(override):
            self.client_tools = self._workspace_tools(override["agent"]["prompt"]["tool_ids"])
        variables = data.get("dynamic_variables") or {}
        if not isinstance(variables, dict) or any(
            not isinstance(v, str | int | float | bool) for v in variables.values()
        ):
            raise ConversationClosed(1008, "dynamic_variables values must be scalars")
        self.variables = variables
        self.session.tag = str(variables.get("call_sid", "")) or self.session.conversation_id

    def _workspace_tools(self, tool_ids: Any) -> list[str]:
        """The client tools a `tool_ids` override picks (it replaces the agent's own)."""
        if not isinstance(tool_ids, list):
            raise ConversationClosed(1008, "agent.prompt.tool_ids must be a list")
        unknown = [t for t in tool_ids if t not in self.config.workspace_tools]
        if unknown:
            raise ConversationClosed(1008, f"unknown tool_ids: {unknown}")
        return [self.config.workspace_tools[t] for t in tool_ids]

    async def _receive_loop(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                self.session.close_code = message.get("code", 1000)
                return
            if message.get("text") is None:
                raise ConversationClosed(1008, "binary frames are not supported")
            await self._handle(_json_object(message["text"]))

    async def _handle(self, data: dict[str, Any]) -> None:
        if "user_audio_chunk" in data:
            await self._audio(data["user_audio_chunk"])
            return
        kind = data.get("type")
        if kind == "pong":
            self._pong(data.get("event_id"))
        elif kind == "client_tool_result":
            self.session.tool_results.append(data)
            future = self.pending_tools.pop(str(data.get("tool_call_id")), None)
            if future is not None and not future.done():
                future.set_result(data)
        elif kind == "user_message":
            self._think(str(data.get("text", "")))
        elif kind == "conversation_initiation_client_data":
            raise ConversationClosed(1008, "conversation_initiation_client_data sent twice")
        else:  # contextual_update, user_activity, feedback, unknown: recorded, no reply
            self.session.other_messages.append(str(kind))

    # ------------------------------------------------------------------ the user
    async def _audio(self, payload: Any) -> None:
        try:
            audio = base64.b64decode(str(payload), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConversationClosed(1008, "user_audio_chunk is not valid base64") from exc
        self.session.audio_bytes += len(audio)
        for result in self.engine.feed(audio):
            if result.get("type") == "SpeechStarted":
                await self._maybe_interrupt()
            elif result.get("type") == "Results" and result.get("is_final"):
                text = result["channel"]["alternatives"][0]["transcript"]
                if text:
                    self.session.transcripts.append(text)
                    await self.send(
                        {
                            "type": "user_transcript",
                            "user_transcription_event": {"user_transcript": text},
                        }
                    )
                    self._think(text)

    def add_utterance(self, text: str, start_ms: float, end_ms: float) -> None:
        """Script what the user says (user-audio time), unless that time has passed."""
        if end_ms > self.engine.audio_ms:
            self.engine.add_utterance(text, max(start_ms, self.engine.audio_ms), end_ms)

    async def _maybe_interrupt(self) -> None:
        now = self.engine.audio_ms
        if now >= self.speaking_until_ms or not self.session.responses:
            return
        response = self.session.responses[-1]
        self.session.interruptions.append(response.event_id)
        self.speaking_until_ms = now
        await self.send(
            {"type": "interruption", "interruption_event": {"event_id": response.event_id}}
        )
        heard = max(0.0, min(1.0, (now - response.start_ms) / max(response.audio_ms, 1.0)))
        words = response.text.split()
        corrected = " ".join(words[: int(len(words) * heard)])
        await self.send(
            {
                "type": "agent_response_correction",
                "agent_response_correction_event": {
                    "original_agent_response": response.text,
                    "corrected_agent_response": corrected,
                },
            }
        )

    # ----------------------------------------------------------------- thinking
    def _think(self, said: str) -> None:
        self.messages.append({"role": "user", "content": said})
        task = asyncio.create_task(self._answer())
        self.thinking.add(task)
        task.add_done_callback(self.thinking.discard)

    async def _answer(self) -> None:
        tools = [{"type": "function", "function": {"name": n}} for n in self.client_tools]
        for _round in range(4):
            decision = decide(self.policy(), self.messages, tools)
            if isinstance(decision, TextDecision):
                await self.speak(decision.text)
                return
            if isinstance(decision, ErrorDecision):
                reason = decision.error.message[:120]
                self.session.close_code, self.session.close_reason = 1011, reason
                await self.ws.close(1011, reason)
                return
            assert isinstance(decision, ToolCallDecision)
            await self._call_tool(decision)

    async def _call_tool(self, call: ToolCallDecision) -> None:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending_tools[call.id] = future
        message = {"tool_name": call.name, "tool_call_id": call.id, "parameters": call.arguments}
        self.session.tool_calls.append(message)
        await self.send({"type": "client_tool_call", "client_tool_call": message})
        try:
            result = await asyncio.wait_for(future, self.config.tool_timeout_s)
            content = result.get("result")
        except TimeoutError:
            content = "The client tool did not answer in time."
        fn = {"name": call.name, "arguments": call.arguments_json}
        self.messages.append(
            {
                "role": "assistant",
                "tool_calls": [{"id": call.id, "type": "function", "function": fn}],
            }
        )
        text = content if isinstance(content, str) else json.dumps(content)
        self.messages.append({"role": "tool", "tool_call_id": call.id, "content": text})

    # -------------------------------------------------------------------- pings
    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.ping_interval_s)
            self.session.pings += 1
            event_id = self.session.pings
            self.ping_sent[event_id] = time.monotonic()
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self.send(
                    {
                        "type": "ping",
                        "ping_event": {"event_id": event_id, "ping_ms": self.last_rtt_ms},
                    }
                )

    def _pong(self, event_id: Any) -> None:
        if not isinstance(event_id, int) or event_id not in self.ping_sent:
            raise ConversationClosed(1008, f"pong for unknown ping event_id {event_id!r}")
        self.session.pongs.append(event_id)
        self.last_rtt_ms = int((time.monotonic() - self.ping_sent.pop(event_id)) * 1000)


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConversationClosed(1008, "message is not JSON") from exc
    if not isinstance(data, dict):
        raise ConversationClosed(1008, "message is not a JSON object")
    return data
