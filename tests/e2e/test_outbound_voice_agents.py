"""Outbound reservation calls served by a provider voice agent (`elevenlabs-agent`,
`deepgram-agent`) end to end: the same request -> dialler -> Twilio REST simulator -> restaurant
host path as the cascade's test (tests/e2e/test_outbound_calls.py), but the caller tenant's
number routes the conversation to the agent simulator, which thinks with the outbound script.
The outcome must reach Postgres, the API and the signed webhook; an answering machine's beep
must reach the agent (the gateway's voicemail cue) so it leaves the message and reports it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from sqlalchemy import update

from shared.db.engine import make_engine, make_sessions
from shared.db.models import PhoneNumber
from tests.conftest import Platform
from tests.e2e.test_outbound_calls import (
    ACCEPTS,
    OUTBOUND_POLICY,
    PLATFORM_POLICY,
    VOICEMAIL,
    WANTED,
    Caller,
    call_record,
    completed,
    make_caller_tenant,
    place,
    reservation,
    sim_call,
    stored,
    webhook_for,
)
from tests.integration.test_webhooks import receiver

pytestmark = pytest.mark.e2e


@dataclass
class AgentCaller:
    """A caller tenant whose number is served by `pipeline`."""

    pipeline: str
    caller: Caller


async def _post(url: str, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        resp = await http.post(url, json=body)
    assert resp.status_code == 200, resp.text


async def _agent_policy(platform: Platform, pipeline: str, policy: dict[str, Any]) -> None:
    """The agent simulator's default policy (the call's CallSid is not known in advance)."""
    if pipeline == "elevenlabs-agent":
        port = platform.stack.ports.el_agent_control
        await _post(f"http://127.0.0.1:{port}/sim/convai/policy", policy)
    else:
        port = platform.stack.ports.dg_agent
        await _post(f"http://127.0.0.1:{port}/sim/agent/policy", {"policy": policy})


async def agent_sessions(platform: Platform, pipeline: str, call_sid: str) -> list[dict[str, Any]]:
    """The agent simulator's sessions of one call."""
    if pipeline == "elevenlabs-agent":
        url = f"http://127.0.0.1:{platform.stack.ports.el_agent_control}/sim/convai/sessions"
    else:
        url = f"http://127.0.0.1:{platform.stack.ports.dg_agent}/sim/agent/sessions"
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        resp = await http.get(url)
    assert resp.status_code == 200, resp.text
    return [s for s in resp.json() if s.get("tag") == call_sid or call_sid in s.get("tags", [])]


@pytest_asyncio.fixture(scope="module", params=["elevenlabs-agent", "deepgram-agent"])
async def agent_caller(
    request: pytest.FixtureRequest, platform: Platform
) -> AsyncIterator[AgentCaller]:
    pipeline: str = request.param
    tenant_id, number, key = await make_caller_tenant(platform, pipeline.split("-")[0])
    engine = make_engine(platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            await session.execute(
                update(PhoneNumber).where(PhoneNumber.e164 == number).values(pipeline=pipeline)
            )
            await session.commit()
    finally:
        await engine.dispose()
    await _agent_policy(platform, pipeline, yaml.safe_load(OUTBOUND_POLICY.read_text()))
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async with (
            receiver(failures=0) as hook,
            httpx.AsyncClient(base_url=platform.gateway, headers=headers, timeout=15) as api,
        ):
            created = await api.post("/v1/webhooks", json={"url": hook.url})
            assert created.status_code == 201, created.text
            secret = created.json()["secret"]
            yield AgentCaller(pipeline, Caller(tenant_id, number, api, hook, secret, platform))
    finally:
        await _agent_policy(platform, pipeline, yaml.safe_load(PLATFORM_POLICY.read_text()))


async def test_outbound_call_on_a_voice_agent_reports_confirmed(agent_caller: AgentCaller) -> None:
    caller = agent_caller.caller
    request = await place(caller, reservation(ACCEPTS))
    view = await completed(caller, request["id"])
    assert view["outcome"] == "confirmed", view
    assert view["outcome_details"]["time"] == WANTED
    assert view["outcome_details"]["reported_by"] == "agent"

    row = await stored(caller, request["id"])
    assert (row.status, row.outcome) == ("completed", "confirmed")
    event = await webhook_for(caller, request["id"])
    assert event["outbound_call"]["outcome"] == "confirmed"
    assert event["event_id"] == row.webhook_event_id

    call_sid = row.twilio_call_sids[0]
    tools, lines = await call_record(caller, call_sid)
    assert tools == ["report_outcome", "end_call"]
    assert lines[0].startswith("agent: Hello, I'm an automated assistant calling on behalf of")
    assert "caller: Yes, seven o'clock is fine for four people, you're all set." in lines
    assert "agent: Thank you so much for your help." in lines  # report_outcome's "say"

    (session,) = await agent_sessions(caller.platform, agent_caller.pipeline, call_sid)
    if agent_caller.pipeline == "elevenlabs-agent":  # the outbound tools, picked by id
        prompt = session["initiation"]["conversation_config_override"]["agent"]["prompt"]
        assert prompt["tool_ids"] == ["report_outcome", "end_call"]
        assert [c["tool_name"] for c in session["tool_calls"]] == ["report_outcome", "end_call"]
    else:
        assert [c["name"] for c in session["function_calls"]] == ["report_outcome", "end_call"]


async def test_outbound_call_on_a_voice_agent_leaves_a_voicemail(
    agent_caller: AgentCaller,
) -> None:
    caller = agent_caller.caller
    request = await place(caller, reservation(VOICEMAIL))
    view = await completed(caller, request["id"])
    assert view["outcome"] == "voicemail_left", view
    assert view["answered_by"] == "machine_end_beep"

    row = await stored(caller, request["id"])
    assert (row.status, row.outcome) == ("completed", "voicemail_left")
    await webhook_for(caller, request["id"])
    call_sid = row.twilio_call_sids[0]
    sim = await sim_call(caller, call_sid)
    assert sim["hangup_by"] == "caller"  # the machine stopped recording after the message
    assert sim["voicemail_bytes"] > 8000
    tools, lines = await call_record(caller, call_sid)
    assert tools == ["report_outcome"]
    agent = " ".join(line.removeprefix("agent: ") for line in lines if line.startswith("agent:"))
    assert "this is a message for Luigi's on behalf of Sam Smith" in agent
    assert "Please call back on 4 4 7 7 0 0, 9 0 0 1 2 3." in agent
