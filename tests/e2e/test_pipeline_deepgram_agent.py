"""The `deepgram-agent` pipeline end to end: a second number of Dave's Barbershop is served by
the Deepgram Voice Agent simulator (driven through deepgram-sdk by media); the caller
simulator scripts the user's speech on the agent simulator, the test scripts the agent's
"thinking" (`POST /sim/agent/policy`), and everything is checked in Postgres."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
import yaml
from sqlalchemy import select

from shared.db.engine import make_engine, make_sessions
from shared.db.models import Booking, CallEvent, PhoneNumber, Resource, Tenant, UsageRecord
from shared.runtime.settings import Settings
from shared.tenancy.call_records import CallRecord
from sim.twilio_caller import CallResult, CallScript, SpeakOver, TwilioCallerOptions, place_call
from sim.twilio_webhook import new_sid
from tests.conftest import ROOT, Platform
from tests.e2e.recording_support import (
    fetch_recording,
    has_sound,
    tenant_keys,
    wait_for_recording,
)
from tests.e2e.test_call_end_to_end import wait_for_record

pytestmark = pytest.mark.e2e

AGENT_NUMBER = "+441632960002"
TRANSFER_NUMBER = "+441632960099"
CALLER = "+447700900123"
GREETING = "Thanks for calling Dave's Barbershop, how can I help?"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def agent_sim(platform: Platform) -> str:
    return f"http://127.0.0.1:{platform.stack.ports.dg_agent}"


@pytest_asyncio.fixture
async def agent_number(platform: Platform) -> AsyncIterator[str]:
    """A second number of Dave's tenant whose calls the Deepgram Voice Agent serves."""
    engine = make_engine(platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            tenant_id = await session.scalar(
                select(Tenant.id).where(Tenant.slug == "daves-barbershop")
            )
            assert tenant_id is not None
            if await session.get(PhoneNumber, AGENT_NUMBER) is None:
                session.add(
                    PhoneNumber(
                        e164=AGENT_NUMBER,
                        tenant_id=tenant_id,
                        pipeline="deepgram-agent",
                        voice="aura-2-thalia-en",
                        transfer_number=TRANSFER_NUMBER,
                    )
                )
                await session.commit()
    finally:
        await engine.dispose()
    yield AGENT_NUMBER


async def set_policy(platform: Platform, call_sid: str, policy: dict[str, Any]) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        resp = await http.post(
            agent_sim(platform) + "/sim/agent/policy", json={"tag": call_sid, "policy": policy}
        )
    assert resp.status_code == 200, resp.text


async def agent_sessions(platform: Platform, call_sid: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(trust_env=False) as http:
        resp = await http.get(agent_sim(platform) + "/sim/agent/sessions", params={"tag": call_sid})
    assert resp.status_code == 200, resp.text
    sessions: list[dict[str, Any]] = resp.json()
    return sessions


def options(platform: Platform, number: str, call_sid: str) -> TwilioCallerOptions:
    return TwilioCallerOptions(
        gateway_url=platform.gateway,
        auth_token=platform.auth_token,
        to_number=number,
        from_number=CALLER,
        call_sid=call_sid,
        stt_control_url=agent_sim(platform),
    )


async def call_events(platform: Platform, call_sid: str, kind: str) -> list[dict[str, Any]]:
    engine = make_engine(platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            rows = await session.scalars(
                select(CallEvent.payload)
                .where(CallEvent.call_sid == call_sid, CallEvent.type == kind)
                .order_by(CallEvent.id)
            )
            return list(rows.all())
    finally:
        await engine.dispose()


def lines_of(record: CallRecord, role: str) -> list[str]:
    return [line.text for line in record.lines if line.role == role]


async def free_slot(platform: Platform) -> datetime:
    """The next weekday 10:00 (Europe/London) at least two days ahead when Dave works (from the
    tenant YAML), is not closed, and has no booking yet."""
    spec = yaml.safe_load(Path(ROOT / "deploy/tenants/daves-barbershop.yaml").read_text())
    tz = ZoneInfo(spec["timezone"])
    dave = next(s for s in spec["staff"] if s["name"] == "Dave")
    closed: set[date] = set()
    for closure in spec.get("closures", []):
        if closure.get("staff") not in (None, "Dave"):
            continue
        day, last = closure["from"], closure.get("to", closure["from"])
        while day <= last:
            closed.add(day)
            day += timedelta(days=1)
    engine = make_engine(platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            dave_id = await session.scalar(
                select(Resource.id)
                .join(Tenant, Tenant.id == Resource.tenant_id)
                .where(Tenant.slug == "daves-barbershop", Resource.name == "Dave")
            )
            day = datetime.now(tz).date() + timedelta(days=2)
            for _ in range(60):
                name = WEEKDAYS[day.weekday()]
                works = any(
                    span.split("-")[0] <= "10:00" and "10:30" <= span.split("-")[1]
                    for span in dave["hours"].get(name, [])
                )
                start = datetime(day.year, day.month, day.day, 10, 0, tzinfo=tz)
                if day.weekday() < 5 and works and day not in closed:
                    taken = await session.scalar(
                        select(Booking.id).where(
                            Booking.resource_id == dave_id,
                            Booking.starts_at == start,
                            Booking.status == "confirmed",
                        )
                    )
                    if taken is None:
                        return start
                day += timedelta(days=1)
    finally:
        await engine.dispose()
    raise AssertionError("no free weekday 10:00 slot for Dave in 60 days")


async def test_inbound_call_books_through_a_function_call(
    platform: Platform, agent_number: str
) -> None:
    call_sid = new_sid("CA")
    start = await free_slot(platform)
    arguments = {
        "customer_name": "Alice Smith",
        "phone": CALLER,
        "service": "Men's Haircut",
        "start": start.strftime("%Y-%m-%dT%H:%M"),
        "staff": "Dave",
    }
    await set_policy(
        platform,
        call_sid,
        {
            "rules": [
                {
                    "match": "book me a haircut",
                    "tool_call": {"name": "book_appointment", "arguments": arguments},
                },
                {"match": r"\bbye\b", "reply": "You're welcome. Goodbye!"},
            ],
            "after_tools": {"book_appointment": "You're all booked in with Dave. See you then!"},
        },
    )
    lines = ["Hi, could you book me a haircut please?", "Great, thanks, bye."]
    result = await place_call(options(platform, agent_number, call_sid), CallScript(lines=lines))
    assert result.error is None, result.error
    record = await wait_for_record(platform.infra.database_url, call_sid)

    assert record.end_reason == "caller-hangup"
    assert lines_of(record, "caller") == lines
    assert lines_of(record, "agent") == [
        GREETING,
        "You're all booked in with Dave. See you then!",
        "You're welcome. Goodbye!",
    ]
    assert [(t.name, t.ok) for t in record.tools] == [("book_appointment", True)]

    engine = make_engine(platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            booking = (
                await session.scalars(select(Booking).where(Booking.call_sid == call_sid))
            ).one()
            usage = (
                await session.scalars(
                    select(UsageRecord).where(
                        UsageRecord.call_sid == call_sid, UsageRecord.provider == "deepgram-agent"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert booking.status == "confirmed"
    assert booking.starts_at == start
    assert [u.metric for u in usage] == ["agent_seconds"] and usage[0].quantity > 3

    # the agent got the tools' answer as a FunctionCallResponse to its own request
    (session_summary,) = await agent_sessions(platform, call_sid)
    (function_call,) = session_summary["function_calls"]
    assert function_call["name"] == "book_appointment"
    response = json.loads(function_call["response"])
    assert response["status"] == "confirmed" and response["start"] == arguments["start"]
    assert booking.id.upper().startswith(response["booking_id"])
    # every agent segment Twilio received was marked and echoed as played
    assert result.clears == 0
    assert len(result.marks_echoed) == 3 and all(s.played for s in result.agent_segments)
    # issue 16: a voice-agent call is recorded like a cascade one, both sides of the line
    await wait_for_recording(platform, call_sid)
    key, _ = await tenant_keys(platform)
    recording = await fetch_recording(platform, key, call_sid)
    assert has_sound(recording.caller, 0, recording.duration_s)
    assert has_sound(recording.agent, 0, recording.duration_s)


async def test_interruption_clears_twilio_buffer(platform: Platform, agent_number: str) -> None:
    call_sid = new_sid("CA")
    await set_policy(
        platform,
        call_sid,
        {"rules": [{"match": r"\bbye\b", "reply": "Goodbye!"}], "fallback": "Sorry, go on?"},
    )
    script = CallScript(lines=[SpeakOver("Sorry, quick question", after_ms=600), "Okay, bye."])
    result = await place_call(options(platform, agent_number, call_sid), script)
    assert result.error is None, result.error
    record = await wait_for_record(platform.infra.database_url, call_sid)

    assert result.clears >= 1
    (barge_in,) = await call_events(platform, call_sid, "caller.barge_in")
    assert barge_in["turn_id"] == 0 and barge_in["trigger"] == "UserStartedSpeaking"
    assert barge_in["heard_text"] == ""
    # the greeting was cut: its mark (if it had been sent yet) came back as cleared
    played = await call_events(platform, call_sid, "audio.segment_played")
    greeting_marks = [p["mark"] for p in played if p["turn_id"] == 0]
    assert greeting_marks == barge_in["cleared_marks"]
    assert all(p["cleared"] for p in played if p["turn_id"] == 0)
    # the cut greeting was not heard, so it is not in the transcript; the rest is
    assert lines_of(record, "agent") == ["Sorry, go on?", "Goodbye!"]
    assert lines_of(record, "caller") == ["Sorry, quick question", "Okay, bye."]


async def _drop_after_reply(platform: Platform, call_sid: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        sessions = await agent_sessions(platform, call_sid)
        if sessions and len(sessions[0]["agent_texts"]) >= 2:
            break
        assert time.monotonic() < deadline, "the agent never answered"
        await asyncio.sleep(0.05)
    async with httpx.AsyncClient(trust_env=False) as http:
        resp = await http.post(
            agent_sim(platform) + "/sim/agent/drop", json={"tag": call_sid, "mode": "abort"}
        )
    assert resp.status_code == 200, resp.text


async def test_provider_disconnect_ends_gracefully(platform: Platform, agent_number: str) -> None:
    call_sid = new_sid("CA")
    await set_policy(
        platform, call_sid, {"rules": [{"match": "hello", "reply": "Hi there, how can I help?"}]}
    )
    script = CallScript(lines=["Hello, is anybody there?"], hangup_after_last=False)
    call = asyncio.create_task(place_call(options(platform, agent_number, call_sid), script))
    await _drop_after_reply(platform, call_sid)
    result: CallResult = await call
    assert result.error is None, result.error
    record = await wait_for_record(platform.infra.database_url, call_sid)

    errors = await call_events(platform, call_sid, "provider.error")
    assert [e["provider"] for e in errors] == ["deepgram-agent"]
    assert record.end_reason is not None and record.end_reason.startswith("provider-error")
    (ended,) = await call_events(platform, call_sid, "call.ended")
    assert ended["reason"] == record.end_reason
    # the apology was spoken in our own voice and heard, then the caller was transferred
    apology = Settings().agent_failure_transfer_text
    assert lines_of(record, "agent")[-1] == apology
    (intent,) = await call_events(platform, call_sid, "call.intent")
    assert (intent["kind"], intent["target"]) == ("transfer", TRANSFER_NUMBER)
    assert result.hangup_by == "server"
    assert result.after_stream_twiml is not None and TRANSFER_NUMBER in result.after_stream_twiml
