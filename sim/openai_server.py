"""OpenAI-compatible chat-completions simulator (HTTP + SSE) driven by a scripted Policy.

Run: python -m sim.openai_server --port 8086 [--policy FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, ValidationError

from sim.llm_policy import (
    DEFAULT_POLICY,
    Decision,
    ErrorDecision,
    Policy,
    TextDecision,
    ToolCallDecision,
    decide,
    load_policy,
    message_text,
    split_arguments,
    split_text,
)

FINGERPRINT = "fp_sim"


class OpenAISimOptions(BaseModel):
    """Configuration of one simulator instance."""

    api_key: str = Field(default="sk-sim", description="Bearer key clients must send.")
    model_name: str = Field(
        default="gpt-4o-mini-2024-07-18", description="Model name reported in responses."
    )
    first_token_latency_ms: float = Field(default=30, description="Delay before the 1st chunk.")
    inter_chunk_latency_ms: float = Field(default=5, description="Delay between later chunks.")
    words_per_chunk: int = Field(default=2, description="Words per streamed content chunk.")
    argument_fragments: int = Field(default=3, description="Pieces a tool call's args split into.")
    policy: Policy = Field(default=DEFAULT_POLICY, description="Initial scripted reply policy.")


@dataclass
class SimState:
    """Mutable per-app state (lives on app.state.sim)."""

    options: OpenAISimOptions
    policy: Policy
    requests: list[dict[str, Any]] = field(default_factory=list)


class SimHTTPError(Exception):
    """An OpenAI-style error response."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (
            status, message, type_, param, code,
        )

    def response(self) -> JSONResponse:
        body = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return JSONResponse({"error": body}, status_code=self.status)


def _state(request: Request) -> SimState:
    state: SimState = request.app.state.sim
    return state


def _check_auth(request: Request, api_key: str) -> None:
    header = request.headers.get("authorization", "")
    given = header[7:] if header.lower().startswith("bearer ") else ""
    if given != api_key:
        shown = f"{given[:6]}***" if given else "(none)"
        raise SimHTTPError(
            401,
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )


def validate_messages(messages: Any) -> list[dict[str, Any]]:
    """Check message list shape and tool_call/tool pairing like the real API (HTTP 400)."""
    if not isinstance(messages, list) or not messages:
        raise SimHTTPError(400, "'messages' must be a non-empty array.", param="messages")
    pending: set[str] = set()
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg:
            raise SimHTTPError(400, f"Invalid message at index {i}.", param=f"messages.[{i}]")
        if msg["role"] == "tool":
            call_id = msg.get("tool_call_id")
            if call_id not in pending:
                raise SimHTTPError(
                    400,
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    f"preceeding message with 'tool_calls' (tool_call_id {call_id!r}).",
                    param=f"messages.[{i}].role",
                )
            pending.discard(call_id)
            continue
        if pending:
            raise SimHTTPError(
                400,
                "An assistant message with 'tool_calls' must be followed by tool messages "
                f"responding to each 'tool_call_id'. Missing: {sorted(pending)}.",
                param=f"messages.[{i}].role",
            )
        if msg["role"] == "assistant":
            pending = {str(c.get("id")) for c in msg.get("tool_calls") or []}
    if pending:
        raise SimHTTPError(
            400,
            "An assistant message with 'tool_calls' must be followed by tool messages "
            f"responding to each 'tool_call_id'. Missing: {sorted(pending)}.",
            param="messages",
        )
    return messages


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    chars = 0
    for msg in messages:
        chars += len(message_text(msg))
        for call in msg.get("tool_calls") or []:
            function = call.get("function") or {}
            chars += len(str(function.get("name", ""))) + len(str(function.get("arguments", "")))
    return chars // 4


def completion_tokens(decision: TextDecision | ToolCallDecision) -> int:
    if isinstance(decision, TextDecision):
        return len(decision.text) // 4
    return (len(decision.name) + len(decision.arguments_json)) // 4


def usage_dict(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _sse(obj: dict[str, Any] | str) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def stream_deltas(
    decision: TextDecision | ToolCallDecision, options: OpenAISimOptions
) -> list[tuple[dict[str, Any], str | None]]:
    """The (delta, finish_reason) sequence of a streamed answer, finish chunk included."""
    if isinstance(decision, TextDecision):
        out: list[tuple[dict[str, Any], str | None]] = [
            ({"role": "assistant", "content": "", "refusal": None}, None)
        ]
        out += [({"content": c}, None) for c in split_text(decision.text, options.words_per_chunk)]
        return [*out, ({}, "stop")]
    first_call = {
        "index": 0,
        "id": decision.id,
        "type": "function",
        "function": {"name": decision.name, "arguments": ""},
    }
    out = [({"role": "assistant", "content": None, "tool_calls": [first_call],
             "refusal": None}, None)]
    for piece in split_arguments(decision.arguments_json, options.argument_fragments):
        out.append(({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}, None))
    return [*out, ({}, "tool_calls")]


async def _event_stream(
    decision: TextDecision | ToolCallDecision,
    options: OpenAISimOptions,
    include_usage: bool,
    n_prompt_tokens: int,
) -> AsyncIterator[bytes]:
    base: dict[str, Any] = {
        "id": f"chatcmpl-{secrets.token_hex(12)}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": options.model_name,
        "system_fingerprint": FINGERPRINT,
    }
    extra: dict[str, Any] = {"usage": None} if include_usage else {}
    await asyncio.sleep((options.first_token_latency_ms + decision.delay_ms) / 1000)
    for i, (delta, finish) in enumerate(stream_deltas(decision, options)):
        if i:
            await asyncio.sleep((options.inter_chunk_latency_ms + decision.chunk_delay_ms) / 1000)
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        yield _sse({**base, "choices": [choice], **extra})
    if include_usage:
        usage = usage_dict(n_prompt_tokens, completion_tokens(decision))
        yield _sse({**base, "choices": [], "usage": usage})
    yield _sse("[DONE]")


def completion_body(
    decision: TextDecision | ToolCallDecision, options: OpenAISimOptions, n_prompt_tokens: int
) -> dict[str, Any]:
    """Non-streaming `chat.completion` response body."""
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None,
                               "tool_calls": None}
    if isinstance(decision, TextDecision):
        message["content"], finish = decision.text, "stop"
    else:
        message["tool_calls"] = [{
            "id": decision.id,
            "type": "function",
            "function": {"name": decision.name, "arguments": decision.arguments_json},
        }]
        finish = "tool_calls"
    return {
        "id": f"chatcmpl-{secrets.token_hex(12)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": options.model_name,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage_dict(n_prompt_tokens, completion_tokens(decision)),
        "system_fingerprint": FINGERPRINT,
    }


async def _chat_completions(request: Request) -> Response:
    sim = _state(request)
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise SimHTTPError(400, f"Invalid JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise SimHTTPError(400, "Request body must be a JSON object.")
    sim.requests.append(body)
    _check_auth(request, sim.options.api_key)
    messages = validate_messages(body.get("messages"))
    tools = body.get("tools") if body.get("tool_choice") != "none" else None
    decision: Decision = decide(sim.policy, messages, tools)
    if isinstance(decision, ErrorDecision):
        err = decision.error
        raise SimHTTPError(err.status, err.message, err.type, None, err.code)
    n_prompt = prompt_tokens(messages)
    if not body.get("stream"):
        delay_ms = sim.options.first_token_latency_ms + decision.delay_ms
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        return JSONResponse(completion_body(decision, sim.options, n_prompt))
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    return StreamingResponse(
        _event_stream(decision, sim.options, include_usage, n_prompt),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


def create_app(options: OpenAISimOptions | None = None) -> FastAPI:
    """Build the simulator app; its state lives on `app.state.sim` (a SimState)."""
    opts = options or OpenAISimOptions()
    app = FastAPI(title="FrontDesk OpenAI simulator")
    app.state.sim = SimState(options=opts, policy=opts.policy.model_copy(deep=True))

    @app.exception_handler(SimHTTPError)
    async def _sim_error(_: Request, exc: SimHTTPError) -> Response:
        return exc.response()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await _chat_completions(request)

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        sim = _state(request)
        _check_auth(request, sim.options.api_key)
        model = {"id": sim.options.model_name, "object": "model", "created": 0,
                 "owned_by": "frontdesk-sim"}
        return {"object": "list", "data": [model]}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/sim/policy")
    async def set_policy(request: Request) -> Response:
        try:
            policy = Policy.model_validate_json(await request.body())
        except ValidationError as exc:
            raise SimHTTPError(422, str(exc), param="policy") from exc
        _state(request).policy = policy
        return JSONResponse(policy.model_dump())

    @app.get("/sim/requests")
    async def get_requests(request: Request) -> list[dict[str, Any]]:
        return list(_state(request).requests)

    @app.delete("/sim/requests")
    async def clear_requests(request: Request) -> dict[str, int]:
        sim = _state(request)
        cleared = len(sim.requests)
        sim.requests.clear()
        return {"cleared": cleared}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible chat-completions simulator")
    parser.add_argument("--port", type=int, default=8086)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--policy", help="YAML or JSON policy file (default: built-in demo)")
    parser.add_argument("--api-key", default=OpenAISimOptions().api_key)
    parser.add_argument("--first-token-latency-ms", type=float, default=30)
    parser.add_argument("--inter-chunk-latency-ms", type=float, default=5)
    args = parser.parse_args(argv)
    options = OpenAISimOptions(
        api_key=args.api_key,
        first_token_latency_ms=args.first_token_latency_ms,
        inter_chunk_latency_ms=args.inter_chunk_latency_ms,
        policy=load_policy(args.policy) if args.policy else DEFAULT_POLICY,
    )
    uvicorn.run(create_app(options), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
