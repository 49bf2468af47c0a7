"""ElevenLabs Conversational AI simulator: `WS /v1/convai/conversation` and the signed-URL REST
call, on a real server (TLS when started with a trustme certificate, like the real `wss://`).

Wire contract: /work/shared/protocols/elevenlabs-convai.md; one conversation is
`sim/elevenlabs_agent_session.py`. Control endpoints (not part of the real API):
* `POST /sim/listen/script {"tag", "text", "start_ms", "end_ms"}`: what the user says, in the
  socket's audio time; the same endpoint the Deepgram STT simulator has, so the Twilio caller
  simulator drives this agent unchanged. The tag is the `call_sid` dynamic variable of the
  conversation (FrontDesk's media service sends it), else the conversation id.
* `POST /sim/convai/policy` (a `sim.llm_policy.Policy` as JSON): how the agent answers.
* `GET /sim/convai/sessions`, `GET /sim/convai/signed-urls`: what clients did.

Authentication (simulator choices where the real service is unspecified): agents listed in
`private_agent_ids` need a `conversation_signature` issued by get-signed-url for that agent
(or an `xi-api-key` header); otherwise the upgrade is refused with HTTP 403. A signature is
valid `signed_url_ttl_s` seconds and, as with `include_conversation_id=true`, single-use.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from shared.tenancy.tool_specs import SPECS
from sim.elevenlabs_agent_session import AgentConfig, ConvaiSession, Conversation
from sim.llm_policy import DEFAULT_POLICY, Policy

DEFAULT_OVERRIDES = (
    "agent.prompt.prompt",
    "agent.first_message",
    "agent.language",
    "tts.voice_id",
    "agent.prompt.tool_ids",
)
INBOUND_TOOLS = [name for name in SPECS if name != "report_outcome"]
"""The simulated agent's own client tools: a receptionist's (no outbound report_outcome)."""


class ConvaiSimOptions(BaseModel):
    """ElevenLabs ConvAI simulator settings (the simulated agent's dashboard config too)."""

    api_key: str = Field("el-sim", description="Accepted xi-api-key.")
    private_agent_ids: list[str] = Field(
        default_factory=lambda: ["agent_frontdesk_private"],
        description="Agents that require authentication (signed URL or xi-api-key).",
    )
    public_base_url: str = Field(
        "https://127.0.0.1:8034", description="Base of the signed URLs handed out (http(s))."
    )
    prompt: str = Field("You are a helpful receptionist.", description="Agent's own prompt.")
    first_message: str = Field("Hello, how can I help?", description="Agent's own greeting.")
    client_tools: list[str] = Field(
        default_factory=lambda: list(INBOUND_TOOLS),
        description="Client tools configured on the agent.",
    )
    workspace_tools: dict[str, str] = Field(
        default_factory=lambda: {name: name for name in SPECS},
        description="Workspace tools by id (-> client tool name) that tool_ids overrides pick.",
    )
    allowed_overrides: list[str] = Field(
        default_factory=lambda: list(DEFAULT_OVERRIDES),
        description="Overrides enabled in the agent's security settings (dotted paths).",
    )
    ms_per_char: float = Field(60.0, ge=0, description="Agent audio length per character.")
    chunk_bytes: int = Field(1600, gt=0, description="µ-law bytes per `audio` event.")
    ping_interval_s: float = Field(2.0, gt=0, description="Seconds between pings.")
    tool_timeout_s: float = Field(15.0, gt=0, description="Wait for a client_tool_result.")
    signed_url_ttl_s: float = Field(900.0, gt=0, description="Signed URL lifetime.")
    policy: Policy = Field(default=DEFAULT_POLICY, description="Initial answer policy.")


class ScriptLine(BaseModel):
    """One scripted user utterance for the conversation tagged `tag`."""

    tag: str = Field(min_length=1)
    text: str = Field(min_length=1)
    start_ms: int = Field(ge=0)
    end_ms: int = Field(gt=0)


@dataclass
class Grant:
    """One signed URL handed out."""

    agent_id: str
    signature: str
    issued_at: float
    used: bool = False


@dataclass
class ConvaiSimState:
    options: ConvaiSimOptions
    policy: Policy
    scripts: dict[str, list[ScriptLine]] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    signed_url_requests: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[ConvaiSession] = field(default_factory=list)
    live: dict[str, Conversation] = field(default_factory=dict)  # tag -> open conversation

    def agent_config(self) -> AgentConfig:
        o = self.options
        return AgentConfig(
            prompt=o.prompt,
            first_message=o.first_message,
            client_tools=o.client_tools,
            workspace_tools=o.workspace_tools,
            allowed_overrides=frozenset(o.allowed_overrides),
            ms_per_char=o.ms_per_char,
            chunk_bytes=o.chunk_bytes,
            ping_interval_s=o.ping_interval_s,
            tool_timeout_s=o.tool_timeout_s,
        )

    def auth_problem(self, agent_id: str, signature: str | None, api_key: str | None) -> str:
        """Why this connection may not talk to the agent ("" if it may)."""
        if signature is not None:
            grant = self.grants.get(signature)
            if grant is None or grant.agent_id != agent_id:
                return "invalid conversation_signature"
            if grant.used:
                return "conversation_signature already used"
            if time.time() - grant.issued_at > self.options.signed_url_ttl_s:
                return "conversation_signature expired"
            grant.used = True
            return ""
        if agent_id in self.options.private_agent_ids and api_key != self.options.api_key:
            return "this agent requires authentication"
        return ""


def _state(app: Any) -> ConvaiSimState:
    state: ConvaiSimState = app.state.sim
    return state


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": {"status": "error", "message": message}}, status_code=status)


async def conversation_ws(websocket: WebSocket) -> None:
    state = _state(websocket.app)
    agent_id = websocket.query_params.get("agent_id", "")
    signature = websocket.query_params.get("conversation_signature")
    if not agent_id:
        await websocket.send_denial_response(_error(400, "agent_id is required"))
        return
    problem = state.auth_problem(agent_id, signature, websocket.headers.get("xi-api-key"))
    if problem:
        await websocket.send_denial_response(_error(403, problem))
        return
    await websocket.accept()
    session = ConvaiSession(
        conversation_id=f"conv_{secrets.token_hex(12)}", agent_id=agent_id, signature=signature
    )
    state.sessions.append(session)
    conversation = Conversation(
        websocket,
        session,
        state.agent_config(),
        lambda: state.policy,
        lambda tag: _attach(state, tag, conversation),
    )
    await conversation.run()
    if state.live.get(session.tag) is conversation:
        del state.live[session.tag]


def _attach(state: ConvaiSimState, tag: str, conversation: Conversation) -> None:
    """The conversation learned its tag: give it the utterances scripted so far."""
    state.live[tag] = conversation
    for line in state.scripts.get(tag, []):
        conversation.add_utterance(line.text, line.start_ms, line.end_ms)


async def get_signed_url(request: Request) -> Response:
    state = _state(request.app)
    agent_id = request.query_params.get("agent_id", "")
    api_key = request.headers.get("xi-api-key")
    state.signed_url_requests.append(
        {"agent_id": agent_id, "api_key_ok": api_key == state.options.api_key}
    )
    if api_key != state.options.api_key:
        return _error(401, "Invalid API key")
    if not agent_id:
        return JSONResponse(
            {"detail": [{"loc": ["query", "agent_id"], "msg": "field required"}]}, 422
        )
    signature = secrets.token_urlsafe(24)
    state.grants[signature] = Grant(agent_id, signature, time.time())
    base = urlsplit(state.options.public_base_url)
    scheme = {"https": "wss", "http": "ws"}.get(base.scheme, base.scheme)
    query = urlencode({"agent_id": agent_id, "conversation_signature": signature})
    url = urlunsplit((scheme, base.netloc, "/v1/convai/conversation", query, ""))
    return JSONResponse({"signed_url": url})


async def post_script(request: Request) -> JSONResponse:
    try:
        line = ScriptLine.model_validate(await request.json())
    except (ValidationError, ValueError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    if line.end_ms <= line.start_ms or not line.text.split():
        return JSONResponse({"error": "need start_ms < end_ms and non-blank text"}, 422)
    state = _state(request.app)
    state.scripts.setdefault(line.tag, []).append(line)
    live = state.live.get(line.tag)
    if live is not None:
        live.add_utterance(line.text, line.start_ms, line.end_ms)
    return JSONResponse({"ok": True, "tag": line.tag, "attached_sessions": int(live is not None)})


async def post_policy(request: Request) -> JSONResponse:
    try:
        policy = Policy.model_validate_json(await request.body())
    except ValidationError as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    _state(request.app).policy = policy
    return JSONResponse(policy.model_dump())


async def get_sessions(request: Request) -> JSONResponse:
    return JSONResponse([s.summary() for s in _state(request.app).sessions])


async def get_signed_urls(request: Request) -> JSONResponse:
    state = _state(request.app)
    grants = [asdict(g) for g in state.grants.values()]
    return JSONResponse({"requests": state.signed_url_requests, "grants": grants})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "service": "elevenlabs-convai-sim"})


def create_app(options: ConvaiSimOptions | None = None) -> Starlette:
    opts = options or ConvaiSimOptions()
    app = Starlette(
        routes=[
            WebSocketRoute("/v1/convai/conversation", conversation_ws),
            Route("/v1/convai/conversation/get-signed-url", get_signed_url, methods=["GET"]),
            Route("/sim/listen/script", post_script, methods=["POST"]),
            Route("/sim/convai/policy", post_policy, methods=["POST"]),
            Route("/sim/convai/sessions", get_sessions, methods=["GET"]),
            Route("/sim/convai/signed-urls", get_signed_urls, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    app.state.sim = ConvaiSimState(options=opts, policy=opts.policy.model_copy(deep=True))
    return app
