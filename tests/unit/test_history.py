"""Chat messages rebuilt from a call's log."""

from __future__ import annotations

from typing import Any

from services.brain.history import build_messages
from shared.contract import events as ev

SID = "CA1"
Entries = list[tuple[str, ev.Event]]


class Log:
    """Builds (entry_id, event) tuples in log order."""

    def __init__(self, prompt: str = "You are a receptionist.") -> None:
        self.entries: Entries = []
        self.add(
            ev.CallStarted(call_sid=SID, from_number="+1", to_number="+2", system_prompt=prompt)
        )

    def add(self, event: Any) -> Log:
        self.entries.append((f"{len(self.entries) + 1}-0", event))
        return self

    def user(self, turn: int, text: str) -> Log:
        return self.add(ev.TurnRequested(call_sid=SID, turn_id=turn, text=text))

    def say(self, turn: int, seq: int, text: str, played: bool | None = True) -> Log:
        self.add(ev.AgentText(call_sid=SID, turn_id=turn, seq=seq, text=text))
        if played is not None:
            self.add(
                ev.SegmentPlayed(
                    call_sid=SID, turn_id=turn, seq=seq, mark=f"t{turn}-s{seq}", cleared=not played
                )
            )
        return self

    def tool(self, turn: int, call_id: str, name: str = "get_business_info") -> Log:
        return self.add(
            ev.ToolRequested(
                call_sid=SID, turn_id=turn, tool_call_id=call_id, name=name, arguments="{}"
            )
        )

    def result(self, turn: int, call_id: str, content: str = "{}") -> Log:
        return self.add(
            ev.ToolResult(
                call_sid=SID,
                turn_id=turn,
                tool_call_id=call_id,
                name="get_business_info",
                ok=True,
                content=content,
            )
        )


def assert_valid_openai_order(messages: list[dict[str, Any]]) -> None:
    """Every assistant tool_calls is answered right after it, each id exactly once."""
    assert messages[0]["role"] == "system"
    pending: list[str] = []
    for msg in messages[1:]:
        if msg["role"] == "tool":
            assert msg["tool_call_id"] in pending, f"orphan tool message {msg}"
            pending.remove(msg["tool_call_id"])
            continue
        assert not pending, f"unanswered tool calls {pending} before {msg}"
        assert msg["role"] in {"user", "assistant"}
        if msg["role"] == "assistant":
            calls = msg.get("tool_calls")
            if calls:
                for call in calls:
                    assert call["type"] == "function"
                    assert set(call["function"]) == {"name", "arguments"}
                pending = [c["id"] for c in calls]
            else:
                assert isinstance(msg["content"], str) and msg["content"]
    assert not pending


def test_system_prompt_first_and_simple_turns() -> None:
    log = Log("PROMPT").user(1, "Hi").say(1, 0, "Hello!").say(1, 1, "How can I help?")
    log.user(2, "Are you open?")
    assert build_messages(log.entries, before_turn=2) == [
        {"role": "system", "content": "PROMPT"},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Are you open?"},
    ]


def test_only_played_agent_text_counts() -> None:
    log = Log().user(1, "Hi").say(1, 0, "Heard.").say(1, 1, "Cleared.", played=False)
    log.say(1, 2, "Never echoed.", played=None).user(2, "Next")
    msgs = build_messages(log.entries, before_turn=2)
    assert [m["content"] for m in msgs[1:]] == ["Hi", "Heard.", "Next"]


def test_played_must_match_turn_and_seq() -> None:
    log = Log().user(1, "Hi")
    log.add(ev.AgentText(call_sid=SID, turn_id=1, seq=0, text="Wrong seq echoed."))
    log.add(ev.SegmentPlayed(call_sid=SID, turn_id=1, seq=1, mark="t1-s1"))
    log.add(ev.AgentText(call_sid=SID, turn_id=1, seq=2, text="Wrong turn echoed."))
    log.add(ev.SegmentPlayed(call_sid=SID, turn_id=0, seq=2, mark="t0-s2"))
    log.user(2, "Next")
    msgs = build_messages(log.entries, before_turn=2)
    assert msgs[1:] == [{"role": "user", "content": "Hi Next"}]  # nothing heard in between


def test_played_event_before_text_in_log_still_counts() -> None:
    log = Log().user(1, "Hi")
    log.add(ev.SegmentPlayed(call_sid=SID, turn_id=1, seq=0, mark="t1-s0"))
    log.add(ev.AgentText(call_sid=SID, turn_id=1, seq=0, text="Hello."))
    msgs = build_messages(log.user(2, "x").entries, before_turn=2)
    assert msgs[2] == {"role": "assistant", "content": "Hello."}


def test_tool_call_then_result_then_text() -> None:
    log = Log().user(1, "Where are you?").tool(1, "call_a").result(1, "call_a", '{"a": 1}')
    log.say(1, 0, "We are on High Street.").user(2, "Thanks")
    msgs = build_messages(log.entries, before_turn=2)
    assert msgs[1:] == [
        {"role": "user", "content": "Where are you?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_business_info", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"a": 1}'},
        {"role": "assistant", "content": "We are on High Street."},
        {"role": "user", "content": "Thanks"},
    ]
    assert_valid_openai_order(msgs)


def test_text_before_tool_call_attaches_to_same_assistant_message() -> None:
    log = Log().user(1, "Prices?").say(1, 0, "Let me check.").tool(1, "c1")
    log.result(1, "c1", "price list").say(1, 1, "A haircut is £25.").user(2, "ok")
    msgs = build_messages(log.entries, before_turn=2)
    assert msgs[2]["role"] == "assistant"
    assert msgs[2]["content"] == "Let me check."
    assert [c["id"] for c in msgs[2]["tool_calls"]] == ["c1"]
    assert msgs[3] == {"role": "tool", "tool_call_id": "c1", "content": "price list"}
    assert msgs[4] == {"role": "assistant", "content": "A haircut is £25."}
    assert_valid_openai_order(msgs)


def test_unplayed_text_before_tool_call_is_dropped() -> None:
    log = Log().user(1, "Prices?").say(1, 0, "Let me check.", played=False).tool(1, "c1")
    log.result(1, "c1").user(2, "ok")
    msgs = build_messages(log.entries, before_turn=2)
    assert msgs[2]["content"] is None
    assert [c["id"] for c in msgs[2]["tool_calls"]] == ["c1"]
    assert_valid_openai_order(msgs)


def test_parallel_tool_calls_share_one_assistant_message() -> None:
    log = Log().user(1, "q").tool(1, "a").tool(1, "b").result(1, "a", "A").result(1, "b", "B")
    msgs = build_messages(log.user(2, "n").entries, before_turn=2)
    assert [c["id"] for c in msgs[2]["tool_calls"]] == ["a", "b"]
    assert msgs[3:5] == [
        {"role": "tool", "tool_call_id": "a", "content": "A"},
        {"role": "tool", "tool_call_id": "b", "content": "B"},
    ]
    assert_valid_openai_order(msgs)


def test_sequential_tool_rounds_get_separate_assistant_messages() -> None:
    log = Log().user(1, "q").tool(1, "a").result(1, "a").tool(1, "b").result(1, "b")
    msgs = build_messages(log.user(2, "n").entries, before_turn=2)
    assert [m["role"] for m in msgs] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "user",
    ]
    assert [c["id"] for c in msgs[2]["tool_calls"]] == ["a"]
    assert [c["id"] for c in msgs[4]["tool_calls"]] == ["b"]
    assert_valid_openai_order(msgs)


def test_current_and_later_turns_excluded() -> None:
    log = Log().user(1, "one").say(1, 0, "Answer one.")
    log.user(2, "two").say(2, 0, "Partial answer two.").tool(2, "c2").result(2, "c2")
    log.user(3, "three").say(3, 0, "Answer three.")
    msgs = build_messages(log.entries, before_turn=2)
    assert msgs[1:] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "Answer one."},
        {"role": "user", "content": "two"},
    ]
    assert_valid_openai_order(msgs)
    msgs3 = build_messages(log.entries, before_turn=3)
    assert [m["role"] for m in msgs3] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "tool",
        "user",
    ]
    assert msgs3[-1] == {"role": "user", "content": "three"}
    assert "Answer three." not in [m.get("content") for m in msgs3]
    assert_valid_openai_order(msgs3)


def test_greeting_before_first_turn() -> None:
    log = Log().say(0, 0, "Thanks for calling Acme.").user(1, "Hi")
    msgs = build_messages(log.entries, before_turn=1)
    assert msgs[1:] == [
        {"role": "assistant", "content": "Thanks for calling Acme."},
        {"role": "user", "content": "Hi"},
    ]


def test_other_events_ignored() -> None:
    log = Log().user(1, "Hi")
    log.add(ev.LatencyMark(call_sid=SID, turn_id=1, stage="llm_request", stage_at=1.0))
    log.add(ev.TranscriptFinal(call_sid=SID, text="Hi", audio_start_ms=0, audio_end_ms=5))
    log.add(ev.Usage(call_sid=SID, provider="openai", metric="tokens", quantity=3))
    assert build_messages(log.user(2, "x").entries, before_turn=2)[1:] == [
        {"role": "user", "content": "Hi x"}
    ]


# ---- logs that real failures produce ----------------------------------------------------------
def test_duplicate_tool_result_from_redelivery_is_answered_once() -> None:
    """The tools service appends a ToolResult again when a job is redelivered."""
    log = Log().user(1, "q").tool(1, "a").result(1, "a", "first").say(1, 0, "Done.")
    log.result(1, "a", "first").user(2, "n")
    msgs = build_messages(log.entries, before_turn=2)
    assert_valid_openai_order(msgs)
    tool_msgs = [m for m in msgs if m["role"] == "tool"]
    assert tool_msgs == [{"role": "tool", "tool_call_id": "a", "content": "first"}]


def test_late_result_after_timeout_result_keeps_first() -> None:
    log = Log().user(1, "q").tool(1, "a").result(1, "a", "timeout").user(2, "again")
    log.result(1, "a", "late real answer").user(3, "n")
    msgs = build_messages(log.entries, before_turn=3)
    assert_valid_openai_order(msgs)
    assert [m["content"] for m in msgs if m["role"] == "tool"] == ["timeout"]


def test_real_result_after_the_brains_timeout_supersedes_it() -> None:
    """The brain gave up (its stand-in result), then tools' real result landed: the LLM is told
    what really happened, so it does not deny a booking that exists."""
    log = Log().user(1, "book me").tool(1, "a")
    log.add(
        ev.ToolResult(
            call_sid=SID,
            turn_id=1,
            tool_call_id="a",
            name="book_appointment",
            ok=False,
            content="timeout",
            by="brain-timeout",
        )
    )
    log.say(1, 0, "Sorry, that failed.").result(1, "a", '{"status": "confirmed"}').user(2, "so?")
    msgs = build_messages(log.entries, before_turn=2)
    assert_valid_openai_order(msgs)
    assert [m["content"] for m in msgs if m["role"] == "tool"] == ['{"status": "confirmed"}']


def test_words_of_a_superseded_unanswered_turn_reach_the_next_turn() -> None:
    """Turn 2's brain died before answering; the caller spoke again (turn 3): the reclaimed turn
    2 is skipped, and turn 3 carries both utterances as one."""
    log = Log().user(1, "Hi").say(1, 0, "Hello!").user(2, "Book me a haircut")
    log.say(2, 0, "Let me", played=False).user(3, "Tomorrow at ten")
    msgs = build_messages(log.entries, before_turn=3)
    assert msgs[1:] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Book me a haircut Tomorrow at ten"},
    ]
    assert_valid_openai_order(msgs)


def test_tool_call_without_result_still_valid() -> None:
    """A brain that died mid-tool-call leaves a ToolRequested with no ToolResult."""
    log = Log().user(1, "q").tool(1, "a").user(2, "hello?")
    msgs = build_messages(log.entries, before_turn=2)
    assert_valid_openai_order(msgs)
    assert msgs[-1] == {"role": "user", "content": "hello?"}


def cue(log: Log, turn: int, text: str) -> Log:
    return log.add(ev.TurnRequested(call_sid=SID, turn_id=turn, text=text, source="system"))


def test_a_system_cue_is_never_joined_to_unanswered_caller_words() -> None:
    """An answering machine's greeting is left unanswered on purpose; the beep's cue after it
    must reach the LLM as the last user message on its own, not buried in the greeting."""
    log = Log().say(0, 0, "Hello, I'm calling about a table.")
    log.user(1, "Please leave a message after the beep.")
    cue(log, 2, "The beep has sounded: leave your message now.")
    msgs = build_messages(log.entries, before_turn=2)
    assert msgs[1:] == [
        {"role": "assistant", "content": "Hello, I'm calling about a table."},
        {"role": "user", "content": "Please leave a message after the beep."},
        {"role": "user", "content": "The beep has sounded: leave your message now."},
    ]
    assert_valid_openai_order(msgs)


def test_caller_words_after_an_unanswered_system_cue_stay_apart() -> None:
    log = cue(Log().user(1, "Hello?"), 2, "The beep has sounded.").user(3, "Anyone there?")
    msgs = build_messages(log.entries, before_turn=3)
    assert [m["content"] for m in msgs[1:]] == ["Hello?", "The beep has sounded.", "Anyone there?"]


def test_a_filler_is_not_something_the_assistant_said() -> None:
    # Media played "One moment." (heard: its mark came back) while the reply was slow; the
    # next turn's history holds the caller's words and the reply only.
    log = Log().user(1, "How much is a haircut?")
    log.add(ev.AgentFiller(call_sid=SID, turn_id=1, seq=-1, text="One moment."))
    log.add(ev.SegmentPlayed(call_sid=SID, turn_id=1, seq=-1, mark="t1-s-1"))
    log.say(1, 0, "It is £25.").user(2, "Thanks.")
    messages = build_messages(log.entries, before_turn=2)
    assert [(m["role"], m["content"]) for m in messages[1:]] == [
        ("user", "How much is a haircut?"),
        ("assistant", "It is £25."),
        ("user", "Thanks."),
    ]
