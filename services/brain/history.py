"""Chat messages derived from a call's log: what the caller said and what they actually heard."""

from __future__ import annotations

from typing import Any

from shared.contract import events as ev

Message = dict[str, Any]


def build_messages(entries: list[tuple[str, ev.Event]], *, before_turn: int) -> list[Message]:
    """System prompt, then every turn before `before_turn`, then that turn's caller text.

    Agent text counts only if its audio segment was played (Twilio echoed its mark). Caller
    words of a turn that got no heard answer (e.g. superseded while its brain was dead) join the
    next turn's words, so they reach the LLM as one utterance. A system cue (the answering
    machine's beep) is no caller words: it is a user message of its own, never joined to the
    unanswered words before it (a machine's greeting, left unanswered on purpose) nor to any after.
    """
    played = {
        (e.turn_id, e.seq) for _, e in entries if isinstance(e, ev.SegmentPlayed) and not e.cleared
    }
    results: dict[str, ev.ToolResult] = {}
    for _, e in entries:
        if isinstance(e, ev.ToolResult):
            first = results.setdefault(e.tool_call_id, e)  # a redelivered result is a duplicate
            if first.by == "brain-timeout" and e.by == "tools":
                results[e.tool_call_id] = e  # what really happened supersedes the stand-in
    messages: list[Message] = []
    assistant: Message | None = None
    answered = False  # a result for one of `assistant`'s tool calls has been logged
    joinable = False  # the last message holds caller words nothing heard has answered yet
    for _, event in entries:
        if isinstance(event, ev.CallStarted):
            messages.append({"role": "system", "content": event.system_prompt})
        elif isinstance(event, ev.TurnRequested):
            if event.turn_id > before_turn:
                break
            assistant = None
            caller = event.source == "caller"
            if caller and joinable and messages[-1]["role"] == "user":
                messages[-1]["content"] = f"{messages[-1]['content']} {event.text}".strip()
            else:
                messages.append({"role": "user", "content": event.text})
            joinable = caller
        elif isinstance(event, ev.AgentText):
            if event.turn_id >= before_turn or (event.turn_id, event.seq) not in played:
                continue
            if assistant is None or assistant.get("tool_calls"):
                assistant = {"role": "assistant", "content": event.text}
                messages.append(assistant)
            else:
                assistant["content"] = f"{assistant['content'] or ''} {event.text}".strip()
        elif isinstance(event, ev.ToolRequested) and event.turn_id < before_turn:
            call = {
                "id": event.tool_call_id,
                "type": "function",
                "function": {"name": event.name, "arguments": event.arguments},
            }
            if assistant is None or ("tool_calls" in assistant and answered):
                assistant = {"role": "assistant", "content": None, "tool_calls": []}
                messages.append(assistant)
            assistant.setdefault("tool_calls", []).append(call)
            answered = False
        elif isinstance(event, ev.ToolResult) and assistant is not None:
            ids = {c["id"] for c in assistant.get("tool_calls", ())}
            answered = answered or event.tool_call_id in ids
    return _with_tool_results(messages, results)


def _with_tool_results(messages: list[Message], results: dict[str, ev.ToolResult]) -> list[Message]:
    """Each tool call answered exactly once, right after its assistant message (as OpenAI
    requires), wherever its result landed in the log; a call that never got one (the brain
    died) gets an error result."""
    out: list[Message] = []
    for message in messages:
        out.append(message)
        for call in message.get("tool_calls", ()):
            result = results.get(call["id"])
            content = result.content if result else _NO_RESULT
            out.append({"role": "tool", "tool_call_id": call["id"], "content": content})
    return out


_NO_RESULT = '{"error": "The tool call got no result."}'
