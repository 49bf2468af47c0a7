"""Chat messages derived from a call's log: what the caller said and what they actually heard."""

from __future__ import annotations

from typing import Any

from shared import events as ev

Message = dict[str, Any]


def build_messages(entries: list[tuple[str, ev.Event]], *, before_turn: int) -> list[Message]:
    """System prompt, then every turn before `before_turn`, then that turn's caller text.

    Agent text counts only if its audio segment was played (Twilio echoed its mark).
    """
    played = {
        (e.turn_id, e.seq) for _, e in entries if isinstance(e, ev.SegmentPlayed) and not e.cleared
    }
    messages: list[Message] = []
    assistant: Message | None = None
    for _, event in entries:
        if isinstance(event, ev.CallStarted):
            messages.append({"role": "system", "content": event.system_prompt})
        elif isinstance(event, ev.TurnRequested):
            if event.turn_id > before_turn:
                break
            assistant = None
            messages.append({"role": "user", "content": event.text})
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
            if assistant is None or ("tool_calls" in assistant and _answered(messages, assistant)):
                assistant = {"role": "assistant", "content": None, "tool_calls": []}
                messages.append(assistant)
            assistant.setdefault("tool_calls", []).append(call)
        elif isinstance(event, ev.ToolResult) and event.turn_id < before_turn:
            messages.append(
                {"role": "tool", "tool_call_id": event.tool_call_id, "content": event.content}
            )
    return messages


def _answered(messages: list[Message], assistant: Message) -> bool:
    """True once a tool message follows `assistant` (a new tool call starts a new message)."""
    return messages[-1] is not assistant
