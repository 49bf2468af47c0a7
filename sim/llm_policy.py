"""Scripted reply policy for the OpenAI-compatible LLM simulator (pure, no I/O)."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, model_validator

AFTER_TOOL_FALLBACK = "Here is what I found: {result}"


class ToolCallSpec(BaseModel):
    """A tool call the simulated model should make."""

    name: str = Field(description="Function name; must be among the request's tools.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="JSON arguments.")


class ErrorSpec(BaseModel):
    """An HTTP error the simulated API should return."""

    status: int = Field(description="HTTP status code, e.g. 429.")
    message: str = Field(description="error.message in the body.")
    type: str = Field(default="invalid_request_error", description="error.type in the body.")
    code: str | None = Field(default=None, description="error.code in the body.")


class Rule(BaseModel):
    """Regex rule on the last user message with exactly one outcome."""

    match: str = Field(description="Case-insensitive regex searched in the last user message.")
    reply: str | None = Field(default=None, description="Text reply.")
    tool_call: ToolCallSpec | None = Field(default=None, description="Tool call to make.")
    error: ErrorSpec | None = Field(default=None, description="HTTP error to return.")
    delay_ms: float = Field(
        default=0, ge=0, description="Extra delay before this rule's first chunk (a slow model)."
    )
    chunk_delay_ms: float = Field(
        default=0, ge=0, description="Extra delay between this rule's chunks (a slow stream)."
    )

    @model_validator(mode="after")
    def _exactly_one_outcome(self) -> Rule:
        outcomes = [self.reply, self.tool_call, self.error]
        if sum(o is not None for o in outcomes) != 1:
            raise ValueError("a rule needs exactly one of reply, tool_call, error")
        re.compile(self.match)
        return self


class Policy(BaseModel):
    """Ordered rules plus the after-tool template and fallback text."""

    rules: list[Rule] = Field(default_factory=list, description="Rules, first match wins.")
    after_tool: str = Field(
        default=AFTER_TOOL_FALLBACK,
        description="str.format_map template used after a tool result ({result} = raw).",
    )
    after_tools: dict[str, str] = Field(
        default_factory=dict, description="Per-tool templates, used instead of after_tool."
    )
    fallback: str = Field(
        default="Sorry, could you say that again?", description="Reply when nothing matches."
    )


class TextDecision(BaseModel):
    """The model answers with text."""

    kind: Literal["text"] = "text"
    text: str
    delay_ms: float = 0
    chunk_delay_ms: float = 0


class ToolCallDecision(BaseModel):
    """The model calls one tool."""

    kind: Literal["tool_call"] = "tool_call"
    id: str
    name: str
    arguments: dict[str, Any]
    delay_ms: float = 0
    chunk_delay_ms: float = 0

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"))


class ErrorDecision(BaseModel):
    """The API returns an HTTP error."""

    kind: Literal["error"] = "error"
    error: ErrorSpec


Decision = TextDecision | ToolCallDecision | ErrorDecision


def message_text(message: dict[str, Any]) -> str:
    """Text of a message's content (a string or a list of text parts)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict)
        )
    return ""


def tool_names(tools: list[dict[str, Any]] | None) -> set[str]:
    """Function names offered in a request's `tools`."""
    names: set[str] = set()
    for tool in tools or []:
        function = tool.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.add(function["name"])
    return names


def new_call_id() -> str:
    return f"call_{secrets.token_hex(12)}"


def render_after_tool(template: str, result: str) -> str:
    """Fill the after-tool template from the tool result; fall back on any format error."""
    values: dict[str, Any] = {}
    try:
        parsed = json.loads(result)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        values.update(parsed)
    values["result"] = result
    try:
        return template.format_map(values)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError):
        return AFTER_TOOL_FALLBACK.format_map({"result": result})


def tool_name_of(messages: list[dict[str, Any]], tool_message: dict[str, Any]) -> str:
    """The function name of the call a tool message answers ("" if not found)."""
    call_id = tool_message.get("tool_call_id")
    for message in reversed(messages):
        for call in message.get("tool_calls") or []:
            if call.get("id") == call_id:
                return str((call.get("function") or {}).get("name", ""))
    return ""


def decide(
    policy: Policy, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
) -> Decision:
    """Decide the simulated model's reply to a chat-completions request."""
    if not messages:
        return TextDecision(text=policy.fallback)
    last = messages[-1]
    role = last.get("role")
    if role == "tool":
        template = policy.after_tools.get(tool_name_of(messages, last), policy.after_tool)
        return TextDecision(text=render_after_tool(template, message_text(last)))
    if role != "user":
        return TextDecision(text=policy.fallback)
    said = message_text(last)
    for rule in policy.rules:
        if not re.search(rule.match, said, re.IGNORECASE):
            continue
        if rule.reply is not None:
            return TextDecision(
                text=rule.reply, delay_ms=rule.delay_ms, chunk_delay_ms=rule.chunk_delay_ms
            )
        if rule.error is not None:
            return ErrorDecision(error=rule.error)
        if rule.tool_call is not None:
            if rule.tool_call.name not in tool_names(tools):
                return TextDecision(text=policy.fallback)
            return ToolCallDecision(
                id=new_call_id(),
                name=rule.tool_call.name,
                arguments=rule.tool_call.arguments,
                delay_ms=rule.delay_ms,
            )
    return TextDecision(text=policy.fallback)


def split_text(text: str, words_per_chunk: int) -> list[str]:
    """Split text into chunks of N words; leading spaces stay attached; ''.join == text."""
    size = max(1, words_per_chunk)
    words = re.findall(r"\s*\S+", text)
    chunks = ["".join(words[i : i + size]) for i in range(0, len(words), size)]
    tail = text[len("".join(chunks)) :]
    if tail:
        if chunks:
            chunks[-1] += tail
        else:
            chunks.append(tail)
    return chunks


def split_arguments(json_str: str, n_fragments: int) -> list[str]:
    """Split a JSON string into at most N non-empty, near-equal pieces; ''.join == input."""
    if not json_str:
        return []
    n = max(1, min(n_fragments, len(json_str)))
    base, extra = divmod(len(json_str), n)
    pieces: list[str] = []
    start = 0
    for i in range(n):
        end = start + base + (1 if i < extra else 0)
        pieces.append(json_str[start:end])
        start = end
    return pieces


def load_policy(path: str | Path) -> Policy:
    """Load a Policy from a YAML (.yaml/.yml) or JSON file."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    return Policy.model_validate(data)


DEFAULT_POLICY = Policy(
    rules=[
        Rule(
            match=r"\b(hi|hello|hey|good (morning|afternoon|evening))\b",
            reply="Hi, thanks for calling Sharp Cuts! How can I help you today?",
        ),
        Rule(
            match=r"where are you|address|located",
            tool_call=ToolCallSpec(name="get_business_info", arguments={}),
        ),
        Rule(
            match=r"price|cost|how much",
            reply="A haircut is 30 dollars and a beard trim is 15 dollars.",
        ),
        Rule(match=r"\b(bye|thanks|thank you)\b", reply="You're welcome, goodbye!"),
    ],
    after_tool="We're at {address}. Anything else I can help with?",
)
