"""The `elevenlabs-agent` pipeline end to end: a second number of Dave's Barbershop routed to an
ElevenLabs Conversational AI agent (the TLS simulator started with the platform), driven by the
same Twilio caller simulator as the cascade, asserted in Postgres and on the simulator."""

from __future__ import annotations

import ssl
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
import pytest_asyncio
import yaml
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from shared.db.engine import make_engine, make_sessions
from shared.db.models import Booking, CallEvent, Customer, Resource
from shared.tenancy.call_records import CallRecord
from sim.twilio_caller import CallResult, CallScript, SpeakOver, TwilioCallerOptions, place_call
from sim.twilio_webhook import new_sid
from tests.conftest import ROOT, Platform
from tests.e2e.test_call_end_to_end import wait_for_record

pytestmark = pytest.mark.e2e

EL_NUMBER = "+441632960077"
CALLER = "+447700900456"
AGENT_ID = "agent_frontdesk_private"
GREETING = "Thanks for calling Dave's Barbershop, how can I help?"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def control(platform: Platform) -> str:
    return f"http://127.0.0.1:{platform.stack.ports.el_agent_control}"


def _asyncpg(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest_asyncio.fixture(scope="session")
async def el_number(platform: Platform) -> str:
    """A number of Dave's tenant whose pipeline is elevenlabs-agent."""
    conn = await asyncpg.connect(_asyncpg(platform.infra.database_url))
    try:
        await conn.execute(
            "INSERT INTO phone_numbers (e164, tenant_id, pipeline, voice, transfer_number)"
            " SELECT $1, tenant_id, 'elevenlabs-agent', '', transfer_number FROM phone_numbers"
            " WHERE e164 = $2 ON CONFLICT (e164) DO NOTHING",
            EL_NUMBER,
            platform.tenant_number,
        )
    finally:
        await conn.close()
    return EL_NUMBER


def _covers(ranges: list[str], at: time, minutes: int) -> bool:
    for span in ranges:
        lo, hi = (time.fromisoformat(t) for t in span.split("-"))
        end = (datetime.combine(date.min, at) + timedelta(minutes=minutes)).time()
        if lo <= at and end <= hi:
            return True
    return False


def _closed(closures: list[dict[str, Any]], day: date, staff: str | None) -> bool:
    for c in closures:
        first = c["from"]
        last = c.get("to", first)
        if first <= day <= last and c.get("staff") in (None, staff):
            return True
    return False


def booking_slot(today: date) -> tuple[datetime, str]:
    """Next weekday 11:00 London at least 2 days ahead the shop is open; Sam if he works then."""
    spec = yaml.safe_load((ROOT / "deploy" / "tenants" / "daves-barbershop.yaml").read_text())
    staff = {s["name"]: s for s in spec["staff"]}
    day = today + timedelta(days=2)
    while True:
        weekday = DAYS[day.weekday()]
        if day.weekday() < 5 and not _closed(spec["closures"], day, None):
            for name in ("Sam", "Dave"):
                works = _covers(staff[name]["hours"].get(weekday, []), time(11), 30)
                if works and not _closed(spec["closures"], day, name):
                    return datetime.combine(day, time(11), ZoneInfo(spec["timezone"])), name
        day += timedelta(days=1)


async def set_policy(platform: Platform, policy: dict[str, Any]) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        resp = await http.post(f"{control(platform)}/sim/convai/policy", json=policy)
    assert resp.status_code == 200, resp.text


async def sim_get(platform: Platform, path: str) -> Any:
    async with httpx.AsyncClient(trust_env=False) as http:
        resp = await http.get(f"{control(platform)}{path}")
    assert resp.status_code == 200, resp.text
    return resp.json()


async def session_of(platform: Platform, call_sid: str) -> dict[str, Any]:
    sessions = [s for s in await sim_get(platform, "/sim/convai/sessions") if s["tag"] == call_sid]
    assert len(sessions) == 1, sessions
    session: dict[str, Any] = sessions[0]
    return session


async def call(platform: Platform, number: str, lines: list[Any]) -> tuple[CallResult, CallRecord]:
    opts = TwilioCallerOptions(
        gateway_url=platform.gateway,
        auth_token=platform.auth_token,
        to_number=number,
        from_number=CALLER,
        call_sid=new_sid("CA"),
        stt_control_url=control(platform),
    )
    result = await place_call(opts, CallScript(lines=lines))
    assert result.error is None, result.error
    record = await wait_for_record(platform.infra.database_url, result.call_sid)
    return result, record


async def events_of(platform: Platform, call_sid: str, kind: str) -> list[dict[str, Any]]:
    engine = make_engine(platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            rows = await session.scalars(
                select(CallEvent.payload)
                .where(CallEvent.call_sid == call_sid, CallEvent.type == kind)
                .order_by(CallEvent.id)
            )
            return [dict(r) for r in rows]
    finally:
        await engine.dispose()


async def test_inbound_call_books_through_a_client_tool_call(
    platform: Platform, el_number: str
) -> None:
    start, staff = booking_slot(datetime.now(ZoneInfo("Europe/London")).date())
    local = start.strftime("%Y-%m-%dT%H:%M")
    args = {
        "customer_name": "Alice Smith",
        "phone": CALLER,
        "service": "Men's Haircut",
        "start": local,
        "staff": staff,
    }
    await set_policy(
        platform,
        {
            "rules": [
                {
                    "match": "book",
                    "tool_call": {"name": "book_appointment", "arguments": args},
                },
                {"match": r"\bbye\b", "reply": "You're welcome. Goodbye!"},
            ],
            "after_tools": {
                "book_appointment": "You're booked for {spoken} with {staff}, ref {booking_id}."
            },
        },
    )
    lines = ["I'd like to book a men's haircut please, I'm Alice Smith.", "Great, thanks, bye."]
    result, record = await call(platform, el_number, lines)

    assert record.end_reason == "caller-hangup"
    assert [line.text for line in record.lines if line.role == "caller"] == lines
    agent = [line.text for line in record.lines if line.role == "agent"]
    assert agent[0] == GREETING
    assert agent[1].startswith("You're booked for ") and f"with {staff}, ref " in agent[1]
    assert agent[-1] == "You're welcome. Goodbye!"
    assert [(t.name, t.ok) for t in record.tools] == [("book_appointment", True)]

    engine = make_engine(platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            rows = (
                await session.execute(
                    select(Booking.status, Booking.starts_at, Resource.name, Customer.phone)
                    .join_from(Booking, Resource, Booking.resource_id == Resource.id)
                    .join_from(Booking, Customer, Booking.customer_id == Customer.id)
                    .where(Booking.call_sid == result.call_sid)
                )
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [("confirmed", start, staff, CALLER)]

    sim = await session_of(platform, result.call_sid)
    override = sim["initiation"]["conversation_config_override"]["agent"]
    assert override["first_message"] == GREETING
    assert "Dave's Barbershop" in override["prompt"]["prompt"]
    assert sim["initiation"]["dynamic_variables"] == {
        "business_name": "Dave's Barbershop",
        "caller_number": CALLER,
        "call_sid": result.call_sid,
    }
    assert [c["tool_name"] for c in sim["tool_calls"]] == ["book_appointment"]
    [tool_result] = sim["tool_results"]
    assert tool_result["is_error"] is False and '"status": "confirmed"' in tool_result["result"]
    assert sim["pings"] >= 1 and sim["pongs"] == list(range(1, len(sim["pongs"]) + 1))
    usage = await events_of(platform, result.call_sid, "usage")
    agent_usage = [u for u in usage if u["provider"] == "elevenlabs-agent"]
    assert len(agent_usage) == 1 and agent_usage[0]["metric"] == "agent_seconds"
    assert agent_usage[0]["quantity"] > 3


async def test_interruption_clears_twilio_buffer(platform: Platform, el_number: str) -> None:
    await set_policy(
        platform,
        {"rules": [{"match": "how much", "reply": "A men's haircut is £25."}]},
    )
    speak_over = SpeakOver("Sorry, how much is a haircut?", after_ms=600)
    result, record = await call(platform, el_number, [speak_over])

    assert result.clears >= 1
    [barge_in] = await events_of(platform, result.call_sid, "caller.barge_in")
    assert barge_in["turn_id"] == 0 and barge_in["cleared_marks"] == ["t0-s0"]
    assert barge_in["heard_text"] == ""
    sim = await session_of(platform, result.call_sid)
    assert sim["interruptions"] == [1]
    played = await events_of(platform, result.call_sid, "audio.segment_played")
    assert {(p["mark"], p["cleared"]) for p in played} >= {("t0-s0", True)}
    assert [line.text for line in record.lines if line.role == "caller"] == [speak_over.text]
    assert [line.text for line in record.lines if line.role == "agent"] == [
        "A men's haircut is £25."
    ]


async def test_private_agent_connects_through_a_signed_url(
    platform: Platform, el_number: str
) -> None:
    await set_policy(platform, {"rules": [{"match": "bye", "reply": "Goodbye!"}]})
    before = await sim_get(platform, "/sim/convai/signed-urls")
    result, record = await call(platform, el_number, ["Okay, bye."])
    after = await sim_get(platform, "/sim/convai/signed-urls")

    new_requests = after["requests"][len(before["requests"]) :]
    assert new_requests == [{"agent_id": AGENT_ID, "api_key_ok": True}]
    sim = await session_of(platform, result.call_sid)
    grants = {g["signature"]: g for g in after["grants"]}
    assert sim["agent_id"] == AGENT_ID
    assert sim["signature"] in grants and grants[sim["signature"]]["used"] is True
    assert [line.text for line in record.lines if line.role == "agent"] == [GREETING, "Goodbye!"]

    # The same agent refuses a socket without a signature (so the call above needed it).
    tls = ssl.create_default_context(cafile=platform.env["PROVIDER_CA_FILE"])
    url = f"wss://127.0.0.1:{platform.stack.ports.el_agent}/v1/convai/conversation?agent_id={AGENT_ID}"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, ssl=tls):
            pass
    assert refused.value.response.status_code == 403
