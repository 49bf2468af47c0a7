"""Fillers (issue 17, item 5) through all five services: when the reply to a confirmed caller
turn is slow (the LLM simulator's rule made slow, or a tool whose calendar is slow), media
plays one cached phrase ("One moment.") before the reply; it is logged as `agent.filler`,
stored as a transcript line of kind `filler`, kept out of the LLM's history, and can be
talked over. Asserted on the call log and rows stored in Postgres (event order, payloads),
never on wall-clock durations.

The shared test platform runs with FILLER_DELAY_S=30 (no filler in other tests' calls); the
`fillers_on` fixture gives Dave's Barbershop a tenant filler delay of 1.2 s, the default."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.media.agent_speech.filler import DEFAULT_PHRASES
from shared.db.engine import make_engine, make_sessions
from shared.db.models import (
    AssistantSettings,
    CalendarConnection,
    CallEvent,
    Resource,
    Tenant,
    TranscriptLine,
    Turn,
)
from shared.tenancy import api_keys
from sim.llm_policy import load_policy
from sim.twilio_caller import CallScript, Misheard, SpeakOver, place_call
from tests.calendar_servers import GoogleCalendarSim
from tests.conftest import ROOT, Platform
from tests.e2e.test_call_end_to_end import caller_options, wait_for_record
from tests.spoken_text import joined_runs

pytestmark = pytest.mark.e2e

Events = list[tuple[str, dict[str, Any]]]
FILLERS = DEFAULT_PHRASES["en"]
PRICE = "A men's haircut is £25."
BYE = "You're welcome. Goodbye!"
SLOW_MS = 2600  # the slow rule's extra delay before its first token (filler due at 1.2 s)


@pytest_asyncio.fixture
async def sessions(platform: Platform) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(platform.infra.database_url)
    yield make_sessions(engine)
    await engine.dispose()


@asynccontextmanager
async def tenant_knobs(
    sessions: async_sessionmaker[AsyncSession], **knobs: Any
) -> AsyncIterator[None]:
    """Dave's Barbershop's conversation knobs with `knobs` for a while, then as before."""
    query = (
        select(AssistantSettings)
        .join(Tenant, Tenant.id == AssistantSettings.tenant_id)
        .where(Tenant.slug == "daves-barbershop")
    )
    async with sessions() as session:
        row = (await session.scalars(query)).one()
        before = dict(row.conversation)
        row.conversation = {**before, **knobs}
        await session.commit()
    try:
        yield
    finally:
        async with sessions() as session:
            row = (await session.scalars(query)).one()
            row.conversation = before
            await session.commit()


@pytest_asyncio.fixture
async def fillers_on(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """Dave's Barbershop's filler delay is 1.2 s for the test (the platform's is 30 s)."""
    async with tenant_knobs(sessions, filler_delay_s=1.2):
        yield


LONG_FILLER = "Let me just check that for you now."  # 2.1 s of simulated speech


@pytest_asyncio.fixture
async def long_filler_on(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """Fillers at 1.2 s, the tenant's own phrase: long enough to be talked over."""
    async with tenant_knobs(sessions, filler_delay_s=1.2, filler_phrases=[LONG_FILLER]):
        yield


@pytest.fixture
def llm(platform: Platform) -> Iterator[httpx.Client]:
    port = platform.env["OPENAI_BASE_URL"].rsplit(":", 1)[1].split("/")[0]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        client.delete("/sim/requests").raise_for_status()
        yield client
        restored = load_policy(ROOT / "sim" / "policies" / "daves_barbershop.yaml").model_dump()
        client.post("/sim/policy", json=restored).raise_for_status()


def policy(*rules: dict[str, Any], after_tools: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "rules": [*rules, {"match": r"\b(bye|thanks)\b", "reply": BYE}],
        "after_tool": "Done.",
        "after_tools": after_tools or {},
        "fallback": "Sorry, could you say that again?",
    }


async def call(platform: Platform, lines: list[Any]) -> str:
    # The simulated caller waits for the answer after a filler's mark (sim/twilio_call_turns:
    # FILLER_MARK), as a caller told "one moment" would; its usual 400 ms pause otherwise.
    result = await place_call(caller_options(platform), CallScript(lines=lines))
    assert result.error is None, result.error
    await wait_for_record(platform.infra.database_url, result.call_sid)
    return result.call_sid


async def stored(
    sessions: async_sessionmaker[AsyncSession], call_sid: str
) -> tuple[Events, list[TranscriptLine], dict[int, Turn]]:
    """The call's events in log order, its transcript lines, its turns."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(CallEvent.type, CallEvent.payload)
                .where(CallEvent.call_sid == call_sid)
                .order_by(CallEvent.id)
            )
        ).all()
        lines = (
            await session.scalars(
                select(TranscriptLine)
                .where(TranscriptLine.call_sid == call_sid)
                .order_by(TranscriptLine.at, TranscriptLine.id)
            )
        ).all()
        turns = (await session.scalars(select(Turn).where(Turn.call_sid == call_sid))).all()
    return [(t, p) for t, p in rows], list(lines), {t.turn_id: t for t in turns}


def of_turn(events: Events, turn_id: int) -> Events:
    return [(t, p) for t, p in events if p.get("turn_id") == turn_id]


def index(events: Events, kind: str, **match: Any) -> int:
    """Position of the first event of `kind` whose payload has `match`."""
    for i, (t, p) in enumerate(events):
        if t == kind and all(p.get(k) == v for k, v in match.items()):
            return i
    raise AssertionError(f"no {kind} {match} in {[t for t, _ in events]}")


def fillers(events: Events) -> list[dict[str, Any]]:
    return [p for t, p in events if t == "agent.filler"]


async def test_a_slow_llm_reply_gets_one_filler_before_it(
    platform: Platform,
    fillers_on: None,
    llm: httpx.Client,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    slow = {"match": "how much", "reply": PRICE, "delay_ms": SLOW_MS}
    llm.post("/sim/policy", json=policy(slow)).raise_for_status()
    call_sid = await call(platform, ["Hi, how much is a haircut?", "Great, thanks, bye."])
    events, lines, turns = await stored(sessions, call_sid)

    # Turn 1 (slow): exactly one filler, played from the cache before anything of the reply.
    turn1 = of_turn(events, 1)
    [filler] = fillers(turn1)
    assert filler["seq"] == -1 and filler["text"] in FILLERS and filler["reason"] == "slow_reply"
    assert filler["waited_ms"] >= 1200
    requested = index(turn1, "turn.requested")
    sent = index(turn1, "audio.segment_sent", seq=-1)
    assert turn1[sent][1]["filler"] is True and turn1[sent][1]["cached"] is True
    assert requested < index(turn1, "agent.filler") < index(turn1, "agent.text")
    assert sent < index(turn1, "audio.segment_sent", seq=0)
    played = index(turn1, "audio.segment_played", seq=-1)
    assert turn1[played][1]["cleared"] is False  # heard whole
    # The reply's latency stages are the reply's: its first audio came after the filler's.
    filler_sent_at = turn1[sent][1]["at"]
    assert turns[1].first_audio_sent_at is not None
    assert turns[1].first_audio_sent_at.timestamp() > filler_sent_at
    assert turns[1].heard_text == PRICE  # the reply's heard text leaves the filler out
    # Figures (media's clock, not asserted): turn confirmed -> filler audio -> reply audio.
    confirmed_at = turn1[requested][1]["at"]
    reply_at = turns[1].first_audio_sent_at.timestamp()
    print(
        f"FIGURE filler_sent_after_turn_ms={(filler_sent_at - confirmed_at) * 1000:.0f}"
        f" filler_waited_ms={filler['waited_ms']}"
        f" reply_first_audio_after_turn_ms={(reply_at - confirmed_at) * 1000:.0f}"
        f" (llm rule delay {SLOW_MS} ms)"
    )

    # Turn 2 (fast): none. The whole call: one filler.
    assert fillers(of_turn(events, 2)) == [] and len(fillers(events)) == 1

    # Postgres: the filler is a transcript line of kind `filler`, before the reply's line.
    agent1 = [(x.kind, x.text) for x in lines if x.role == "agent" and x.turn_id == 1]
    assert joined_runs(agent1) == [("filler", filler["text"]), ("speech", PRICE)]
    assert [x.turn_id for x in lines if x.kind == "filler"] == [1]

    # The read API and the console show the line marked as a filler.
    async with sessions() as session:
        key = await api_keys.create_for_tenant(session, "daves-barbershop", "filler-test")
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=10) as http:
        detail = await http.get(f"/v1/calls/{call_sid}", headers={"Authorization": f"Bearer {key}"})
        assert detail.status_code == 200, detail.text
        transcript = detail.json()["transcript"]
        kinds = [
            (x["kind"], x["text"]) for x in transcript if x["turn_id"] == 1 and x["role"] == "agent"
        ]
        assert joined_runs(kinds) == [("filler", filler["text"]), ("speech", PRICE)]
        signed_in = await http.post("/console/sign-in", data={"key": key})
        assert signed_in.status_code == 303, signed_in.text
        cookie = signed_in.headers["set-cookie"].split(";", 1)[0]
        page = await http.get(f"/console/calls/{call_sid}", headers={"Cookie": cookie})
        assert page.status_code == 200
        assert 'class="agent filler"' in page.text and 'data-testid="filler"' in page.text

    # The LLM never saw the filler as something the assistant said (turn 2's request).
    requests = llm.get("/sim/requests").json()
    bye = [r for r in requests if "bye" in str(r["messages"][-1].get("content", ""))]
    assert bye, "the second turn's LLM request"
    said = [m.get("content") for m in bye[-1]["messages"] if m["role"] == "assistant"]
    assert PRICE in said and not any(f in str(said) for f in FILLERS)


async def test_a_slow_tool_gets_a_filler_while_it_runs(
    platform: Platform,
    fillers_on: None,
    llm: httpx.Client,
    sessions: async_sessionmaker[AsyncSession],
    google_calendar_sim: GoogleCalendarSim,
) -> None:
    # Dave's calendar answers after 2.5 s: check_availability waits for it.
    calendar_id = google_calendar_sim.new_calendar(latency_ms=2500, time_zone="Europe/London")
    async with sessions() as session:
        tenant = (
            await session.scalars(select(Tenant).where(Tenant.slug == "daves-barbershop"))
        ).one()
        dave = (
            await session.scalars(
                select(Resource).where(Resource.tenant_id == tenant.id, Resource.name == "Dave")
            )
        ).one()
        connection = CalendarConnection(
            tenant_id=tenant.id,
            resource_id=dave.id,
            kind="google",
            timeout_ms=6000,
            config={
                "base_url": google_calendar_sim.base_url,
                "calendar_id": calendar_id,
                "access_token": google_calendar_sim.token,
            },
        )
        session.add(connection)
        await session.commit()
        connection_id = connection.id
    try:
        rule = {
            "match": "available",
            "tool_call": {
                "name": "check_availability",
                "arguments": {"service": "Men's Haircut", "staff": "Dave"},
            },
        }
        after = {"check_availability": "Dave has times free tomorrow morning."}
        llm.post("/sim/policy", json=policy(rule, after_tools=after)).raise_for_status()
        call_sid = await call(platform, ["Is Dave available tomorrow?", "Great, thanks, bye."])
    finally:
        async with sessions() as session:
            await session.execute(
                delete(CalendarConnection).where(CalendarConnection.id == connection_id)
            )
            await session.commit()
    events, lines, _ = await stored(sessions, call_sid)

    turn1 = of_turn(events, 1)
    [filler] = fillers(turn1)
    assert filler["reason"] == "tool_pending" and filler["text"] in FILLERS
    # While the tool ran: after its request, before its result and before any reply text.
    assert index(turn1, "tool.requested") < index(turn1, "agent.filler")
    assert index(turn1, "agent.filler") < index(turn1, "tool.result")
    assert index(turn1, "agent.filler") < index(turn1, "agent.text")
    assert len(fillers(events)) == 1
    agent1 = [(x.kind, x.text) for x in lines if x.role == "agent" and x.turn_id == 1]
    reply = after["check_availability"]
    assert joined_runs(agent1) == [("filler", filler["text"]), ("speech", reply)]


async def test_a_fast_reply_and_a_discarded_preemptive_reply_get_no_filler(
    platform: Platform,
    fillers_on: None,
    llm: httpx.Client,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # The interims hear "address": the preemptive request matches the slow rule (it would
    # keep the caller waiting 4 s). The final says "how much": that reply is fast. Only the
    # confirmed turn's reply counts; the discarded request's slowness gives no filler.
    slow = {"match": "address", "reply": "We're at 123 High Street.", "delay_ms": 4000}
    fast = {"match": "how much", "reply": PRICE}
    llm.post("/sim/policy", json=policy(slow, fast)).raise_for_status()
    misheard = Misheard(
        "And how much is a haircut?", interim_text="And where is your address then?"
    )
    call_sid = await call(platform, [misheard, "Great, thanks, bye."])
    events, lines, _ = await stored(sessions, call_sid)

    turn1 = of_turn(events, 1)
    resolved = turn1[index(turn1, "turn.preempt_resolved")][1]
    assert resolved["used"] is False and resolved["reason"] == "words changed"
    assert " ".join(p["text"] for t, p in turn1 if t == "agent.text") == PRICE
    assert fillers(events) == []
    assert [x.kind for x in lines] == ["speech"] * len(lines)


async def test_the_caller_can_talk_over_a_filler(
    platform: Platform,
    long_filler_on: None,
    llm: httpx.Client,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    slow = {"match": "how much", "reply": PRICE, "delay_ms": 4000}
    # "tuesday" first: the interrupted turn's words join the next turn's in the LLM history
    tuesday = {"match": "tuesday", "reply": "Tuesday works."}
    llm.post("/sim/policy", json=policy(tuesday, slow)).raise_for_status()
    lines = [
        "Hi, how much is a haircut?",
        SpeakOver("No wait, can I come on Tuesday", after_ms=300),
        "Great, thanks, bye.",
    ]
    call_sid = await call(platform, lines)
    events, stored_lines, turns = await stored(sessions, call_sid)

    turn1 = of_turn(events, 1)
    [filler] = fillers(turn1)
    barge = turn1[index(turn1, "caller.barge_in")][1]
    assert barge["turn_id"] == 1 and barge["heard_text"] == ""  # nothing of the reply heard
    assert barge["filler_only"] is True  # only the filler was cut, the reply was not
    assert index(turn1, "agent.filler") < index(turn1, "caller.barge_in")
    # The filler was cut: its mark came back cleared, so it is no transcript line; the
    # caller's words made turn 2, which superseded turn 1's slow reply: never spoken.
    assert turn1[index(turn1, "audio.segment_played", seq=-1)][1]["cleared"] is True
    assert not [p for t, p in turn1 if t == "audio.segment_sent" and p["seq"] >= 0]
    assert [x for x in stored_lines if x.turn_id == 1 and x.role == "agent"] == []
    assert not turns[1].barged_in  # its reply was never cut: it never began
    assert "Tuesday works." in [x.text for x in stored_lines if x.turn_id == 2]
    assert filler["text"] == LONG_FILLER  # the tenant's own phrase


async def test_a_backchannel_over_a_filler_does_not_cost_the_reply(
    platform: Platform,
    long_filler_on: None,
    llm: httpx.Client,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # "mhm" while the filler plays: the onset rule cuts the filler, the verdict undoes it;
    # the slow reply (not cancelled: only a filler was cut) is spoken when it comes.
    slow = {"match": "how much", "reply": PRICE, "delay_ms": 3000}
    llm.post("/sim/policy", json=policy(slow)).raise_for_status()
    lines = [
        "Hi, how much is a haircut?",
        SpeakOver("mhm", after_ms=800, expect_interrupt=False),
        "Great, thanks, bye.",
    ]
    call_sid = await call(platform, lines)
    events, stored_lines, turns = await stored(sessions, call_sid)

    turn1 = of_turn(events, 1)
    barge = turn1[index(turn1, "caller.barge_in")][1]
    assert barge["filler_only"] is True
    assert index(turn1, "agent.filler") < index(turn1, "caller.barge_in")
    assert index(turn1, "caller.barge_in") < index(turn1, "caller.false_interrupt")
    # The reply was heard whole, after the verdict; "mhm" was no turn.
    played = [p for t, p in turn1 if t == "audio.segment_played" and p["seq"] >= 0]
    assert played and not any(p["cleared"] for p in played)
    assert " ".join(x.text for x in stored_lines if x.turn_id == 1 and x.role == "agent") == PRICE
    assert [p["text"] for t, p in events if t == "turn.requested"] == [
        "Hi, how much is a haircut?",
        "Great, thanks, bye.",
    ]
    assert not turns[1].barged_in and turns[1].false_interrupts == 1
