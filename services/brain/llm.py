"""Streaming chat completions from any OpenAI-compatible endpoint, as typed pieces."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2  # the HTTP client of the openai SDK (its fork of httpx)
from openai import AsyncOpenAI, DefaultAsyncHttpxClient, OpenAIError
from opentelemetry.trace import StatusCode

from shared.runtime.settings import Settings
from shared.runtime.telemetry import tracer

_tracer = tracer(__name__)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextDelta:
    """A fragment of the reply's text."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    """A complete function call (arguments reassembled from fragments)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class TokenUsage:
    """Token counts reported at the end of the stream."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # the part of prompt_tokens served from the provider's cache


LlmPiece = TextDelta | ToolCall | TokenUsage


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


def make_client(settings: Settings) -> AsyncOpenAI:
    """An OpenAI SDK client for the configured base URL."""
    return AsyncOpenAI(
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key,
        timeout=settings.llm_timeout_s,
        max_retries=1,
        # Idle connections are kept a minute (httpx: 5 s), so a turn reuses a warm one.
        http_client=DefaultAsyncHttpxClient(
            limits=httpx2.Limits(
                max_connections=1000,
                max_keepalive_connections=100,
                keepalive_expiry=settings.llm_keepalive_s,
            )
        ),
    )


async def keep_warm(client: AsyncOpenAI, interval_s: float) -> None:
    """Open the LLM connection now and keep one open (`GET /models` every `interval_s`), so
    the first turn after a quiet spell pays no TCP+TLS handshake. Runs until cancelled."""
    if interval_s <= 0:
        return
    while True:
        try:
            await client.models.list()
        except OpenAIError as exc:  # a provider without /models: warming is best effort
            log.info("LLM warm-up request failed: %s", exc)
        await asyncio.sleep(interval_s)


async def stream_reply(
    client: AsyncOpenAI,
    settings: Settings,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
) -> AsyncIterator[LlmPiece]:
    """`_pieces` in an `llm.request` span (child of the current one) with the token counts."""
    span = _tracer.start_span(
        "llm.request",
        attributes={
            "gen_ai.system": "openai",
            "gen_ai.request.model": settings.llm_model,
            "gen_ai.request.messages": len(messages),
        },
    )
    try:
        async for piece in _pieces(client, settings, messages, tools):
            if isinstance(piece, TokenUsage):
                span.set_attribute("gen_ai.usage.input_tokens", piece.prompt_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", piece.completion_tokens)
                span.set_attribute("gen_ai.usage.cached_tokens", piece.cached_tokens)
            yield piece
    except Exception as exc:
        span.record_exception(exc)
        span.set_status(StatusCode.ERROR, type(exc).__name__)
        raise
    finally:
        span.end()


async def _pieces(
    client: AsyncOpenAI,
    settings: Settings,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
) -> AsyncIterator[LlmPiece]:
    """Text deltas as they arrive; tool calls once complete; usage last when reported.

    Handles tool calls that arrive whole (Groq, Ollama) or fragmented (OpenAI, vLLM), and
    usage on its own chunk or on the finish chunk.
    """
    kwargs: dict[str, Any] = {}
    if tools:
        kwargs["tools"] = tools
    create: Any = client.chat.completions.create
    stream = await create(
        model=settings.llm_model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        temperature=settings.llm_temperature,
        max_completion_tokens=settings.llm_max_tokens,
        **kwargs,
    )
    calls: dict[int, _PartialCall] = {}
    usage: TokenUsage | None = None
    async for chunk in stream:
        if chunk.usage is not None:
            details = chunk.usage.prompt_tokens_details
            usage = TokenUsage(
                chunk.usage.prompt_tokens,
                chunk.usage.completion_tokens,
                (details.cached_tokens or 0) if details is not None else 0,
            )
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                yield TextDelta(delta.content)
            for fragment in delta.tool_calls or []:
                call = calls.setdefault(fragment.index, _PartialCall())
                if fragment.id:
                    call.id = fragment.id
                if fragment.function and fragment.function.name:
                    call.name = fragment.function.name
                if fragment.function and fragment.function.arguments:
                    call.arguments.append(fragment.function.arguments)
    for index in sorted(calls):
        call = calls[index]
        yield ToolCall(id=call.id, name=call.name, arguments="".join(call.arguments) or "{}")
    if usage is not None:
        yield usage
