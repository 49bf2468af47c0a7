"""Deepgram Voice Agent simulator: `WS /v1/agent/converse` on a real server.

Wire contract: /work/shared/protocols/deepgram-voice-agent.md, checked against deepgram-sdk
7.17's agent types. Driven like the STT simulator: the caller simulator scripts what the user
says with `POST /sim/listen/script {"tag", "text", "start_ms", "end_ms"}` (audio time of the
socket, which starts at `SettingsApplied`), and the socket is matched to a call through the
Settings `tags` (media puts the CallSid there). What the agent answers comes from an
`llm_policy.Policy`: the server's default, or one set per tag (or for all) with
`POST /sim/agent/policy {"tag"?, "policy": {...}}`. `POST /sim/agent/drop {"tag", "mode"}`
breaks a live socket: `close` (1011 close frame), `abort` (TCP reset) or `error` (an `Error`
message, then 1011).

Simulator choices where the real service is unspecified:
* Welcome is sent on accept; an early Settings is simply read after it.
* Audio before Settings, a second Settings, or an unknown message type: `Error` + close 1008.
* Idle (no audio, no KeepAlive) for `idle_timeout_s`: close 1011 without an Error.
* The greeting is spoken as ConversationText, AgentStartedSpeaking, audio, AgentAudioDone.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from sim import stt_reconnect as reconnect
from sim.deepgram_agent_session import AgentConversation, AgentSimSession, DeepgramAgentSimOptions
from sim.deepgram_agent_settings import SettingsError, parse_settings
from sim.deepgram_common import auth_error, new_request_id, run_cli, subprotocol_for
from sim.deepgram_stt_server import ScriptUtterance
from sim.llm_policy import DEFAULT_POLICY, Policy
from sim.stt_script import SttEngineOptions, SttScriptEngine

__all__ = ["DeepgramAgentSimOptions", "create_app", "main"]


class PolicyRequest(BaseModel):
    """`POST /sim/agent/policy`: what the agent answers, for one call (tag) or all calls."""

    tag: str | None = Field(None, description="CallSid the policy is for; None = the default.")
    policy: Policy


class AgentDropRequest(BaseModel):
    """`POST /sim/agent/drop`: break the live socket(s) of one call."""

    tag: str = Field(min_length=1)
    mode: Literal["close", "abort", "error"] = "abort"


@dataclass
class AgentSimState:
    """Everything kept between requests (app.state.sim)."""

    options: DeepgramAgentSimOptions
    default_policy: Policy
    policies: dict[str, Policy] = field(default_factory=dict)
    scripts: dict[str, list[ScriptUtterance]] = field(default_factory=dict)
    sessions: list[AgentSimSession] = field(default_factory=list)

    def policy_for(self, tags: list[str]) -> Policy:
        for tag in tags:
            if tag in self.policies:
                return self.policies[tag]
        return self.default_policy

    def register(self, utt: ScriptUtterance) -> int:
        self.scripts.setdefault(utt.tag, []).append(utt)
        attached = 0
        for session in self.sessions:
            if not session.closed and utt.tag in session.tags and session.engine is not None:
                session.engine.add_utterance(utt.text, utt.start_ms, utt.end_ms)
                attached += 1
        return attached


def _state(app: Any) -> AgentSimState:
    state: AgentSimState = app.state.sim
    return state


async def _first_message(ws: WebSocket) -> Any:
    msg = await ws.receive()
    if msg["type"] == "websocket.disconnect":
        return None
    if msg.get("bytes") is not None:
        raise SettingsError("audio before Settings", "SETTINGS_REQUIRED")
    try:
        return json.loads(msg.get("text") or "")
    except json.JSONDecodeError as exc:
        raise SettingsError("message is not JSON", "UNPARSABLE_CLIENT_MESSAGE") from exc


async def converse_ws(websocket: WebSocket) -> None:
    state = _state(websocket.app)
    rid = new_request_id()
    denied = auth_error(state.options.api_key, websocket.headers, rid)
    if denied is not None:
        await websocket.send_denial_response(denied)
        return
    await websocket.accept(
        subprotocol=subprotocol_for(websocket.headers),
        headers=[(b"dg-request-id", rid.encode())],
    )
    session = AgentSimSession(request_id=rid)
    state.sessions.append(session)
    conversation = AgentConversation(
        websocket, session, state.options, lambda: state.policy_for(session.tags)
    )
    session.drop = lambda mode: _drop(conversation, mode)
    try:
        await conversation.send_json({"type": "Welcome", "request_id": rid})
        try:
            first = await _first_message(websocket)
            if first is None:
                return
            settings = parse_settings(first)
        except SettingsError as exc:
            await conversation.send_json(
                {"type": "Error", "code": exc.code, "description": exc.description}
            )
            await conversation.close(1008, exc.code)
            return
        engine = SttScriptEngine(
            SttEngineOptions(
                sample_rate=settings.input_rate,
                bytes_per_sample=settings.input_bytes_per_sample,
                endpointing_ms=state.options.endpointing_ms,
                vad_events=True,
                request_id=rid,
            )
        )
        session.settings, session.tags, session.engine = settings, settings.tags, engine
        for tag in settings.tags:
            for utt in state.scripts.get(tag, []):
                engine.add_utterance(utt.text, utt.start_ms, utt.end_ms)
        await conversation.send_json({"type": "SettingsApplied"})
        await conversation.run()
    finally:
        session.closed, session.drop = True, None


def _drop(conversation: AgentConversation, mode: str) -> None:
    """Break the socket like a network or provider failure."""
    session = conversation.session
    session.dropped, session.drop = mode, None
    if mode == "abort":
        reconnect.abort_connection(conversation.ws._send)
        return

    async def close() -> None:
        if mode == "error":
            await conversation.send_json(
                {"type": "Error", "code": "SIM_PROVIDER_FAILURE", "description": "dropped"}
            )
        await conversation.close(1011, "NET-0000")

    asyncio.get_running_loop().create_task(close())


async def post_script(request: Request) -> JSONResponse:
    try:
        utt = ScriptUtterance.model_validate(await request.json())
    except (ValueError, ValidationError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    if utt.end_ms <= utt.start_ms or not utt.text.split():
        return JSONResponse({"error": "need start_ms < end_ms and non-blank text"}, 422)
    attached = _state(request.app).register(utt)
    return JSONResponse({"ok": True, "tag": utt.tag, "attached_sessions": attached})


async def post_policy(request: Request) -> JSONResponse:
    try:
        body = PolicyRequest.model_validate(await request.json())
    except (ValueError, ValidationError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    state = _state(request.app)
    if body.tag is None:
        state.default_policy = body.policy
    else:
        state.policies[body.tag] = body.policy
    return JSONResponse({"ok": True, "tag": body.tag})


async def post_drop(request: Request) -> JSONResponse:
    try:
        body = AgentDropRequest.model_validate(await request.json())
    except (ValueError, ValidationError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    sessions = _state(request.app).sessions
    drops = [s.drop for s in sessions if s.drop and body.tag in s.tags and not s.closed]
    if not drops:
        return JSONResponse({"error": f"no open socket with tag {body.tag!r}"}, status_code=404)
    try:
        for drop in drops:
            drop(body.mode)
    except RuntimeError as exc:
        return JSONResponse({"error": str(exc)}, status_code=500)
    return JSONResponse({"ok": True, "tag": body.tag, "dropped_sessions": len(drops)})


async def get_sessions(request: Request) -> JSONResponse:
    tag = request.query_params.get("tag")
    sessions = _state(request.app).sessions
    return JSONResponse([s.summary() for s in sessions if tag is None or tag in s.tags])


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "service": "deepgram-agent-sim"})


def create_app(
    options: DeepgramAgentSimOptions | None = None, policy: Policy | None = None
) -> Starlette:
    app = Starlette(
        routes=[
            WebSocketRoute("/v1/agent/converse", converse_ws),
            Route("/sim/listen/script", post_script, methods=["POST"]),
            Route("/sim/agent/policy", post_policy, methods=["POST"]),
            Route("/sim/agent/drop", post_drop, methods=["POST"]),
            Route("/sim/agent/sessions", get_sessions, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    app.state.sim = AgentSimState(
        options=options or DeepgramAgentSimOptions(), default_policy=policy or DEFAULT_POLICY
    )
    return app


def main(argv: list[str] | None = None) -> None:
    run_cli("python -m sim.deepgram_agent_server", DeepgramAgentSimOptions, create_app, argv)


if __name__ == "__main__":
    main()
