"""Tests for the OpenAI chat-completions simulator, driven by the real openai SDK."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from openai import AsyncOpenAI

from sim.llm_policy import (
    DEFAULT_POLICY,
    ErrorDecision,
    ErrorSpec,
    Policy,
    Rule,
    TextDecision,
    ToolCallDecision,
    ToolCallSpec,
    decide,
    load_policy,
    split_arguments,
    split_text,
)
from sim.openai_server import OpenAISimOptions, create_app

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_business_info",
            "description": "Business address and hours",
            "parameters": {"type": "object", "properties": {}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "book_appointment",
            "description": "Book a slot",
            "parameters": {
                "type": "object",
                "properties": {"day": {"type": "string"}, "time": {"type": "string"}},
            },
        },
    },
]

TEST_POLICY = Policy(
    rules=[
        Rule(match=r"\bhello\b", reply="Hi there, thanks for calling Sharp Cuts today!"),
        Rule(match=r"where", tool_call=ToolCallSpec(name="get_business_info", arguments={})),
        Rule(
            match=r"book",
            tool_call=ToolCallSpec(
                name="book_appointment", arguments={"day": "Friday", "time": "15:30"}
            ),
        ),
        Rule(
            match=r"busy",
            error=ErrorSpec(
                status=429,
                message="Rate limit reached",
                type="requests",
                code="rate_limit_exceeded",
            ),
        ),
        Rule(match=r"crash", error=ErrorSpec(status=500, message="boom", type="server_error")),
    ],
    after_tool="We're at {address}. Anything else I can help with?",
)


# ---------------------------------------------------------------- pure unit tests


def _user(text: str) -> Any:  # Any: usable both as a dict and as an SDK message param
    return {"role": "user", "content": text}


def test_decide_text_rule_is_case_insensitive() -> None:
    d = decide(TEST_POLICY, [{"role": "system", "content": "x"}, _user("HELLO!")], None)
    assert d == TextDecision(text="Hi there, thanks for calling Sharp Cuts today!")


def test_decide_tool_call_needs_tool_in_request() -> None:
    d = decide(TEST_POLICY, [_user("where are you?")], TOOLS)
    assert isinstance(d, ToolCallDecision)
    assert d.name == "get_business_info" and d.arguments == {}
    assert d.id.startswith("call_") and len(d.id) > len("call_")
    assert decide(TEST_POLICY, [_user("where are you?")], None) == TextDecision(
        text=TEST_POLICY.fallback
    )
    assert decide(TEST_POLICY, [_user("where are you?")], TOOLS[1:]) == TextDecision(
        text=TEST_POLICY.fallback
    )


def test_decide_only_matches_last_user_message() -> None:
    msgs = [_user("hello"), {"role": "assistant", "content": "Hi"}, _user("what now")]
    assert decide(TEST_POLICY, msgs, TOOLS) == TextDecision(text=TEST_POLICY.fallback)
    # last message not from the user -> fallback, rules not consulted
    assert decide(TEST_POLICY, [_user("hello"), {"role": "assistant", "content": "x"}], None) == (
        TextDecision(text=TEST_POLICY.fallback)
    )


def test_decide_error_rule() -> None:
    d = decide(TEST_POLICY, [_user("are you busy")], None)
    assert isinstance(d, ErrorDecision)
    assert d.error.status == 429 and d.error.code == "rate_limit_exceeded"


def test_decide_after_tool_fills_template_and_falls_back() -> None:
    tool_msg = {"role": "tool", "tool_call_id": "call_1", "content": '{"address": "1 Main St"}'}
    d = decide(TEST_POLICY, [_user("where"), tool_msg], TOOLS)
    assert d == TextDecision(text="We're at 1 Main St. Anything else I can help with?")
    missing = {"role": "tool", "tool_call_id": "call_1", "content": '{"hours": "9-5"}'}
    d2 = decide(TEST_POLICY, [_user("where"), missing], TOOLS)
    assert d2 == TextDecision(text='Here is what I found: {"hours": "9-5"}')
    raw_policy = Policy(after_tool="Result was {result}!")
    raw = {"role": "tool", "tool_call_id": "c", "content": "not json"}
    assert decide(raw_policy, [raw], None) == TextDecision(text="Result was not json!")


def test_rule_requires_exactly_one_outcome() -> None:
    with pytest.raises(ValueError):
        Rule(match="x")
    with pytest.raises(ValueError):
        Rule(match="x", reply="a", tool_call=ToolCallSpec(name="t", arguments={}))


def test_default_policy_demo_flow() -> None:
    biz = [{"type": "function", "function": {"name": "get_business_info"}}]
    assert isinstance(
        decide(DEFAULT_POLICY, [_user("Where are you located?")], biz), ToolCallDecision
    )
    price = decide(DEFAULT_POLICY, [_user("How much is a haircut?")], biz)
    assert isinstance(price, TextDecision) and "dollars" in price.text
    assert decide(DEFAULT_POLICY, [_user("ok thanks, bye")], biz) == TextDecision(
        text="You're welcome, goodbye!"
    )
    assert decide(DEFAULT_POLICY, [_user("zzz")], biz) == TextDecision(
        text="Sorry, could you say that again?"
    )


def test_split_text_groups_words_and_round_trips() -> None:
    text = "Hi there, thanks for calling today!  "
    chunks = split_text(text, 2)
    assert chunks == ["Hi there,", " thanks for", " calling today!  "]
    assert "".join(chunks) == text
    assert split_text("", 2) == []
    assert split_text("one", 5) == ["one"]


def test_split_arguments_fragments_and_round_trips() -> None:
    s = '{"day":"Friday","time":"15:30"}'
    parts = split_arguments(s, 3)
    assert len(parts) == 3 and "".join(parts) == s and all(parts)
    assert split_arguments("{}", 3) == ["{", "}"]
    assert split_arguments("", 3) == []


def test_load_policy_yaml_and_json(tmp_path: Path) -> None:
    y = tmp_path / "p.yaml"
    y.write_text("rules:\n  - match: 'hi'\n    reply: 'Yo'\nafter_tool: 'got {result}'\n")
    p = load_policy(y)
    assert p.rules[0].reply == "Yo" and p.after_tool == "got {result}"
    j = tmp_path / "p.json"
    j.write_text(json.dumps({"rules": [{"match": "x", "tool_call": {"name": "t"}}]}))
    assert load_policy(j).rules[0].tool_call == ToolCallSpec(name="t", arguments={})


# ---------------------------------------------------------------- live server


def _serve(options: OpenAISimOptions) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(options), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("simulator did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def base_url() -> Iterator[str]:
    options = OpenAISimOptions(
        first_token_latency_ms=1, inter_chunk_latency_ms=1, policy=TEST_POLICY
    )
    yield from _serve(options)


def _client(base_url: str, api_key: str = "sk-sim") -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0, timeout=10)


async def test_streamed_text_reassembles(base_url: str) -> None:
    client = _client(base_url)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[_user("hello")], stream=True
    )
    chunks = [c async for c in stream]
    content_chunks = [c.choices[0].delta.content for c in chunks if c.choices]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    assert "".join(x or "" for x in content_chunks) == TEST_POLICY.rules[0].reply
    assert sum(1 for x in content_chunks if x) > 1  # actually streamed in pieces
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices[0].delta.content is None
    assert all(c.usage is None for c in chunks)
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id.startswith("chatcmpl-")
    assert chunks[0].model == "gpt-4o-mini-2024-07-18"


async def test_streamed_tool_call_and_follow_up(base_url: str) -> None:
    client = _client(base_url)
    messages: list[Any] = [_user("I'd like to book a cut")]
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=TOOLS, stream=True
    )
    chunks = [c async for c in stream]
    first = chunks[0].choices[0].delta
    assert first.content is None and first.tool_calls is not None
    assert first.tool_calls[0].function is not None
    assert first.tool_calls[0].function.name == "book_appointment"
    assert first.tool_calls[0].function.arguments == ""
    call_id = first.tool_calls[0].id
    assert call_id is not None and call_id.startswith("call_")
    arg_parts: list[str] = []
    for c in chunks[1:]:
        if c.choices and c.choices[0].delta.tool_calls:
            tcs = c.choices[0].delta.tool_calls
            assert len(tcs) == 1 and tcs[0].index == 0 and tcs[0].id is None
            assert tcs[0].function is not None and tcs[0].function.arguments
            arg_parts.append(tcs[0].function.arguments)
    assert len(arg_parts) > 1
    args = "".join(arg_parts)
    assert json.loads(args) == {"day": "Friday", "time": "15:30"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    # follow-up with the tool result -> after_tool template filled from its JSON
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "book_appointment", "arguments": args},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": '{"address": "12 Elm Road"}'},
    ]
    stream2 = await client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=TOOLS, stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream2 if c.choices])
    assert text == "We're at 12 Elm Road. Anything else I can help with?"

    async with httpx.AsyncClient() as http:
        recorded = (await http.get(f"{base_url}/sim/requests")).json()
        assert [len(r["messages"]) for r in recorded] == [1, 3]
        assert recorded[1]["messages"][2]["tool_call_id"] == call_id
        assert (await http.delete(f"{base_url}/sim/requests")).json() == {"cleared": 2}
        assert (await http.get(f"{base_url}/sim/requests")).json() == []


async def test_usage_only_with_include_usage(base_url: str) -> None:
    client = _client(base_url)
    msgs: list[Any] = [{"role": "system", "content": "s" * 40}, _user("hello")]
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=msgs, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens == (40 + len("hello")) // 4
    assert last.usage.completion_tokens == len(TEST_POLICY.rules[0].reply or "") // 4
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"

    plain = await client.chat.completions.create(model="m", messages=msgs, stream=True)
    assert all(c.usage is None and c.choices for c in [c async for c in plain])


async def test_raw_sse_wire_format(base_url: str) -> None:
    body = {"model": "m", "messages": [_user("where")], "tools": TOOLS, "stream": True}
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{base_url}/v1/chat/completions",
            json=body,
            headers={"Authorization": "Bearer sk-sim"},
        )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.text.endswith("data: [DONE]\n\n")
    events = [e for e in r.text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    payloads = [json.loads(e[6:]) for e in events[:-1]]
    assert payloads[0]["choices"][0]["delta"]["content"] is None
    assert "usage" not in payloads[0]
    assert payloads[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }


async def test_wrong_key_is_authentication_error(base_url: str) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        await _client(base_url, api_key="sk-wrong").chat.completions.create(
            model="m", messages=[_user("hello")]
        )
    assert info.value.status_code == 401 and info.value.code == "invalid_api_key"


async def test_mismatched_tool_call_id_is_bad_request(base_url: str) -> None:
    msgs: list[Any] = [
        _user("where"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_business_info", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_b", "content": "{}"},
    ]
    client = _client(base_url)
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="m", messages=msgs, tools=TOOLS, stream=True)
    assert info.value.param == "messages.[2].role"
    # an unanswered tool call is rejected too
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="m", messages=msgs[:2], tools=TOOLS)


async def test_error_rules_map_to_sdk_exceptions(base_url: str) -> None:
    client = _client(base_url)
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="m", messages=[_user("busy?")], stream=True)
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.message.endswith("Rate limit reached")
    assert info.value.type == "requests"
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="m", messages=[_user("crash")])


async def test_non_streaming_text_and_tool_call(base_url: str) -> None:
    client = _client(base_url)
    r = await client.chat.completions.create(model="m", messages=[_user("hello")])
    assert r.object == "chat.completion"
    assert r.choices[0].message.content == TEST_POLICY.rules[0].reply
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None and r.usage.prompt_tokens == len("hello") // 4
    t = await client.chat.completions.create(model="m", messages=[_user("book")], tools=TOOLS)
    calls = t.choices[0].message.tool_calls
    assert t.choices[0].finish_reason == "tool_calls" and calls is not None
    assert calls[0].type == "function"
    assert calls[0].function.name == "book_appointment"
    assert json.loads(calls[0].function.arguments) == {"day": "Friday", "time": "15:30"}


async def test_runtime_policy_swap_and_models(base_url: str) -> None:
    new = Policy(rules=[Rule(match="hello", reply="Swapped!")], fallback="nope")
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{base_url}/sim/policy", content=new.model_dump_json())
        assert r.status_code == 200
        bad = await http.post(f"{base_url}/sim/policy", json={"rules": [{"match": "x"}]})
        assert bad.status_code == 422
        assert (await http.get(f"{base_url}/healthz")).json() == {"status": "ok"}
    client = _client(base_url)
    r2 = await client.chat.completions.create(model="m", messages=[_user("hello")])
    assert r2.choices[0].message.content == "Swapped!"
    models = await client.models.list()
    assert [m.id for m in models.data] == ["gpt-4o-mini-2024-07-18"]
