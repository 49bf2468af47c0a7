"""Preemptive replies (issue 17) through all five services: the reply starts from a stable
interim transcript before STT's final; the final decides whether it is spoken. Asserted on the
call log as stored in Postgres (event order, payloads, usage and cost), never on timing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from shared.db.engine import make_engine, make_sessions
from shared.db.models import CallEvent, ToolInvocation, UsageRecord
from shared.tenancy.call_records import CallRecord
from sim.twilio_caller import CallScript, Misheard, place_call
from tests.conftest import Platform
from tests.e2e.test_call_end_to_end import caller_options, wait_for_record

pytestmark = pytest.mark.e2e

Events = list[tuple[str, dict[str, Any]]]


async def stored(platform: Platform, call_sid: str) -> tuple[Events, list[str], list[str]]:
    """The call's events in log order, its usage metrics, its tool invocations."""
    engine = make_engine(platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            rows = (
                await session.execute(
                    select(CallEvent.type, CallEvent.payload)
                    .where(CallEvent.call_sid == call_sid)
                    .order_by(CallEvent.id)
                )
            ).all()
            usage = (
                await session.scalars(
                    select(UsageRecord.metric).where(UsageRecord.call_sid == call_sid)
                )
            ).all()
            tools = (
                await session.scalars(
                    select(ToolInvocation.name).where(ToolInvocation.call_sid == call_sid)
                )
            ).all()
    finally:
        await engine.dispose()
    return [(t, p) for t, p in rows], list(usage), list(tools)


def of_turn(events: Events, turn_id: int) -> Events:
    """The turn's own events (turn.*, agent.*, tool.*), in log order."""
    kinds = ("turn.", "agent.", "tool.")
    return [(t, p) for t, p in events if t.startswith(kinds) and p.get("turn_id") == turn_id]


async def call(platform: Platform, lines: list[Any]) -> tuple[str, CallRecord]:
    result = await place_call(caller_options(platform), CallScript(lines=lines))
    assert result.error is None, result.error
    record = await wait_for_record(platform.infra.database_url, result.call_sid)
    return result.call_sid, record


async def test_a_preemptive_reply_is_used_when_the_final_matches(platform: Platform) -> None:
    lines = ["Hi, how much is a haircut?", "And where are you located?", "Great, thanks, bye."]
    call_sid, record = await call(platform, lines)
    events, usage, tools = await stored(platform, call_sid)

    for turn_id, line in enumerate(lines, start=1):
        turn = of_turn(events, turn_id)
        types = [t for t, _ in turn]
        # The reply was asked for before the final: preempted, then requested, then resolved
        # as used, and only then is anything of it written for media to speak.
        assert types[:3] == ["turn.preempted", "turn.requested", "turn.preempt_resolved"], types
        preempted, requested, resolved = (p for _, p in turn[:3])
        assert preempted["text"] == requested["text"] == line
        assert resolved["used"] is True and resolved["reason"] == "matched"
        assert resolved["wasted_prompt_tokens"] == resolved["wasted_completion_tokens"] == 0
        assert "agent.text" in types[3:] and types[-1] == "agent.turn_done"
    # The held tool call of the matched turn 2 ran once, after the turn was confirmed.
    turn2 = [t for t, _ in of_turn(events, 2)]
    assert turn2.index("tool.requested") > turn2.index("turn.preempt_resolved")
    assert tools == ["get_business_info"]
    assert [line.text for line in record.lines if line.role == "caller"] == lines
    agent = [line.text for line in record.lines if line.role == "agent"]
    assert any("£25" in text for text in agent) and any("High Street" in t for t in agent)
    assert not any(m.startswith("wasted_") for m in usage)
    # One turn row per caller turn, no row for anything preemptive of its own.
    assert [t for t, _ in events].count("turn.requested") == len(lines)


async def test_a_preemptive_reply_is_discarded_unheard_when_the_final_differs(
    platform: Platform,
) -> None:
    # The interims hear "address" (the policy answers with a tool call); the final says
    # "how much" (a plain price reply). The tool call must never run, nor its text be spoken.
    misheard = Misheard(
        "And how much is a haircut?", interim_text="And where is your address then?"
    )
    call_sid, record = await call(platform, [misheard, "Great, thanks, bye."])
    events, usage, tools = await stored(platform, call_sid)

    turn = of_turn(events, 1)
    types = [t for t, _ in turn]
    assert types[:3] == ["turn.preempted", "turn.requested", "turn.preempt_resolved"], types
    preempted, requested, resolved = (p for _, p in turn[:3])
    assert preempted["text"] == "And where is your address then?"
    assert requested["text"] == "And how much is a haircut?"
    assert resolved["used"] is False and resolved["reason"] == "words changed"
    assert resolved["wasted_prompt_tokens"] > 0
    # Nothing of the discarded reply was written: no tool request, and the only text of the
    # turn is the answer to the final words.
    assert "tool.requested" not in [t for t, _ in events] and tools == []
    texts = [p["text"] for t, p in turn if t == "agent.text"]
    assert texts and all("High Street" not in text for text in texts)
    assert any("£25" in text for text in texts)
    agent = [line.text for line in record.lines if line.role == "agent"]
    assert not any("High Street" in text for text in agent)
    # The discarded request's tokens are billed on their own lines.
    assert {"wasted_prompt_tokens", "wasted_completion_tokens"} <= set(usage)
