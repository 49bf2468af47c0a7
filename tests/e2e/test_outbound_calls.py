"""Outbound reservation calls end to end: `POST /v1/outbound-calls` -> the gateway's dialler ->
the twilio library's REST client -> the Twilio REST simulator, which dials the scripted
restaurant host (or its answering machine) and streams it through media, brain and tools ->
`report_outcome` -> Twilio's final status callback -> the outcome in Postgres and the signed
`outbound.completed` webhook at a real receiver. One test per outcome."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from sqlalchemy import select

from shared.db.engine import make_engine, make_sessions
from shared.db.models import (
    ApiKey,
    OutboundCallRequest,
    PhoneNumber,
    Tenant,
    ToolInvocation,
    TranscriptLine,
)
from shared.tenancy import api_keys
from tests.conftest import Platform
from tests.integration.test_webhooks import Receiver, receiver, verify

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
OUTBOUND_POLICY = ROOT / "sim" / "policies" / "outbound_reservation.yaml"
PLATFORM_POLICY = ROOT / "sim" / "policies" / "daves_barbershop.yaml"
ACCEPTS, ALTERNATIVE, VOICEMAIL, NO_ANSWER, BUSY = (
    "+441632960101",
    "+441632960102",
    "+441632960103",
    "+441632960104",
    "+441632960105",
)
WANTED = "2031-06-13T19:00"  # the policy's report_outcome arguments name this evening
DEADLINE_S = 120.0


def reservation(number: str, **extra: Any) -> dict[str, Any]:
    """A valid request body for `number` (extra keys go into the body, not the details)."""
    return {
        "purpose": "restaurant_reservation",
        "details": {
            "restaurant_number": number,
            "restaurant_name": "Luigi's",
            "customer_name": "Sam Smith",
            "party_size": 4,
            "date_time": WANTED,
            "flexibility_minutes": 120,
            "callback_number": "+447700900123",
        },
        **extra,
    }


@dataclass
class Caller:
    """A tenant that places outbound calls, with its API client and webhook receiver."""

    tenant_id: str
    number: str
    api: httpx.AsyncClient
    hook: Receiver
    secret: str
    platform: Platform


async def make_caller_tenant(platform: Platform, label: str) -> tuple[str, str, str]:
    """A fresh tenant with one number (to call from) and an API key: (id, number, key)."""
    number = "+44113496" + str(uuid.uuid4().int % 10**4).zfill(4)
    key = api_keys.generate()
    engine = make_engine(platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            tenant = Tenant(
                slug=f"{label}-{uuid.uuid4().hex[:8]}",
                name="Concierge Co",
                timezone="Europe/London",
            )
            session.add(tenant)
            await session.flush()
            session.add(PhoneNumber(e164=number, tenant_id=tenant.id, voice="aura-2-thalia-en"))
            session.add(ApiKey(tenant_id=tenant.id, key_sha256=api_keys.hash_key(key)))
            await session.commit()
            return tenant.id, number, key
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(scope="module")
async def outbound_llm(platform: Platform) -> AsyncIterator[None]:
    """The LLM simulator answers with the outbound script; the platform's policy after."""
    url = f"http://127.0.0.1:{platform.stack.ports.llm}/sim/policy"
    async with httpx.AsyncClient(timeout=10) as http:
        policy = yaml.safe_load(OUTBOUND_POLICY.read_text())
        assert (await http.post(url, json=policy)).status_code == 200
        try:
            yield
        finally:
            default = yaml.safe_load(PLATFORM_POLICY.read_text())
            assert (await http.post(url, json=default)).status_code == 200


@pytest_asyncio.fixture(scope="module")
async def caller(platform: Platform, outbound_llm: None) -> AsyncIterator[Caller]:
    tenant_id, number, key = await make_caller_tenant(platform, "outbound")
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        receiver(failures=0) as hook,
        httpx.AsyncClient(base_url=platform.gateway, headers=headers, timeout=15) as api,
    ):
        created = await api.post("/v1/webhooks", json={"url": hook.url})
        assert created.status_code == 201, created.text
        yield Caller(tenant_id, number, api, hook, created.json()["secret"], platform)


async def place(caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    """Request a call; returns the request as the API shows it."""
    response = await caller.api.post("/v1/outbound-calls", json=body)
    assert response.status_code == 202, response.text
    created: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/outbound-calls/{created['id']}"
    assert created["status"] == "queued" and created["outcome"] is None
    return created


async def completed(caller: Caller, request_id: str) -> dict[str, Any]:
    """The request once it is completed (bounded wait)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        got = await caller.api.get(f"/v1/outbound-calls/{request_id}")
        assert got.status_code == 200, got.text
        view: dict[str, Any] = got.json()
        if view["status"] == "completed":
            return view
        caller.platform.stack.check_alive()
        assert time.monotonic() < deadline, f"not completed in {DEADLINE_S}s: {view}"
        await asyncio.sleep(0.2)


async def webhook_for(caller: Caller, request_id: str) -> dict[str, Any]:
    """The signed outbound.completed event the receiver got for this request."""
    deadline = time.monotonic() + 30
    while True:
        for headers, body in caller.hook.received:
            event = json.loads(body)
            if event.get("type") == "outbound.completed" and (
                event["outbound_call"]["id"] == request_id
            ):
                assert verify(caller.secret, headers, body), "bad webhook signature"
                assert headers["x-frontdesk-event-id"] == event["event_id"]
                return dict(event)
        assert time.monotonic() < deadline, "no outbound.completed webhook received"
        await asyncio.sleep(0.1)


async def stored(caller: Caller, request_id: str) -> OutboundCallRequest:
    engine = make_engine(caller.platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            row = await session.get(OutboundCallRequest, request_id)
            assert row is not None
            return row
    finally:
        await engine.dispose()


async def sim_call(caller: Caller, call_sid: str) -> dict[str, Any]:
    """What the Twilio REST simulator saw of one call."""
    url = f"http://127.0.0.1:{caller.platform.stack.ports.twilio}/sim/calls/{call_sid}"
    async with httpx.AsyncClient(timeout=10) as http:
        got = await http.get(url)
    assert got.status_code == 200, got.text
    return dict(got.json())


async def call_record(caller: Caller, call_sid: str) -> tuple[list[str], list[str]]:
    """Tool names the call invoked and its transcript lines ("role: text"), once recorded."""
    engine = make_engine(caller.platform.infra.database_url)
    deadline = time.monotonic() + 30
    try:
        async with make_sessions(engine)() as session:
            while True:
                tools = (
                    await session.scalars(
                        select(ToolInvocation.name)
                        .where(ToolInvocation.call_sid == call_sid)
                        .order_by(ToolInvocation.created_at)
                    )
                ).all()
                lines = (
                    await session.execute(
                        select(TranscriptLine.role, TranscriptLine.text)
                        .where(TranscriptLine.call_sid == call_sid)
                        .order_by(TranscriptLine.id)
                    )
                ).all()
                if tools and lines:
                    return list(tools), [f"{r.role}: {r.text}" for r in lines]
                assert time.monotonic() < deadline, f"call {call_sid} not recorded"
                await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


def assert_answered_progress(sim: dict[str, Any]) -> None:
    """Twilio's status callbacks of an answered call: in order, numbered, with a duration."""
    callbacks = sim["callbacks"]
    assert [c["CallStatus"] for c in callbacks] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert [c["SequenceNumber"] for c in callbacks] == ["0", "1", "2", "3"]
    assert int(callbacks[-1]["CallDuration"]) > 0
    assert {c["Direction"] for c in callbacks} == {"outbound-api"}


async def test_outbound_call_confirmed(caller: Caller) -> None:
    request = await place(caller, reservation(ACCEPTS))
    view = await completed(caller, request["id"])
    assert view["outcome"] == "confirmed", view
    assert view["outcome_details"]["time"] == WANTED
    assert view["answered_by"] == "human" and view["attempts"] == 1

    row = await stored(caller, request["id"])
    assert (row.status, row.outcome, row.from_number, row.to_number) == (
        "completed",
        "confirmed",
        caller.number,
        ACCEPTS,
    )
    assert len(row.twilio_call_sids) == 1 and row.webhook_queued_at is not None
    event = await webhook_for(caller, request["id"])
    assert event["outbound_call"]["outcome"] == "confirmed"
    assert event["event_id"] == row.webhook_event_id

    call_sid = row.twilio_call_sids[0]
    assert_answered_progress(await sim_call(caller, call_sid))
    tools, lines = await call_record(caller, call_sid)
    assert tools == ["report_outcome", "end_call"]
    assert lines[0].startswith("agent: Hello, I'm an automated assistant calling on behalf of")
    assert "caller: Yes, seven o'clock is fine for four people, you're all set." in lines


async def test_outbound_call_alternative_offered(caller: Caller) -> None:
    request = await place(caller, reservation(ALTERNATIVE))
    view = await completed(caller, request["id"])
    assert view["outcome"] == "alternative_offered", view
    details = view["outcome_details"]
    assert details["time"] == "2031-06-13T20:30"
    assert details["accepted"] is True and details["within_flexibility"] is True

    row = await stored(caller, request["id"])
    assert (row.status, row.outcome) == ("completed", "alternative_offered")
    event = await webhook_for(caller, request["id"])
    assert event["outbound_call"]["outcome_details"]["time"] == "2031-06-13T20:30"
    _, lines = await call_record(caller, row.twilio_call_sids[0])
    agent = " ".join(line.removeprefix("agent: ") for line in lines if line.startswith("agent:"))
    assert "Eight thirty works for us." in agent


async def test_outbound_call_voicemail_left(caller: Caller) -> None:
    request = await place(caller, reservation(VOICEMAIL))
    view = await completed(caller, request["id"])
    assert view["outcome"] == "voicemail_left", view
    assert view["answered_by"] == "machine_end_beep"

    row = await stored(caller, request["id"])
    assert (row.status, row.outcome, row.answered_by) == (
        "completed",
        "voicemail_left",
        "machine_end_beep",
    )
    await webhook_for(caller, request["id"])
    call_sid = row.twilio_call_sids[0]
    sim = await sim_call(caller, call_sid)
    assert_answered_progress(sim)
    assert sim["amd"]["AnsweredBy"] == "machine_end_beep"
    assert sim["hangup_by"] == "caller"  # the machine stopped recording after the message
    assert sim["voicemail_bytes"] > 8000  # over a second of the agent's message was recorded
    tools, lines = await call_record(caller, call_sid)
    assert tools == ["report_outcome"]
    agent = " ".join(line.removeprefix("agent: ") for line in lines if line.startswith("agent:"))
    assert "this is a message for Luigi's on behalf of Sam Smith" in agent
    assert "Please call back on 4 4 7 7 0 0, 9 0 0 1 2 3." in agent


async def test_outbound_call_no_answer_after_retries(caller: Caller) -> None:
    request = await place(caller, reservation(NO_ANSWER, max_retries=2, retry_delay_s=1))
    view = await completed(caller, request["id"])
    assert view["outcome"] == "no_answer", view
    assert view["attempts"] == view["max_attempts"] == 3
    assert view["outcome_details"]["attempts"] == 3

    row = await stored(caller, request["id"])
    assert (row.status, row.outcome, row.attempts) == ("completed", "no_answer", 3)
    assert len(set(row.twilio_call_sids)) == 3
    for call_sid in row.twilio_call_sids:
        sim = await sim_call(caller, call_sid)
        statuses = [c["CallStatus"] for c in sim["callbacks"]]
        assert statuses == ["initiated", "ringing", "no-answer"], statuses
        assert sim["callbacks"][-1]["CallDuration"] == "0"
    event = await webhook_for(caller, request["id"])
    assert event["outbound_call"]["outcome"] == "no_answer"
    assert event["outbound_call"]["call_sids"] == row.twilio_call_sids
