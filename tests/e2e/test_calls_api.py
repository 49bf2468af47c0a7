"""The tenant-scoped read API and webhooks on a real call through the running platform: list,
search, detail (transcript, waterfall, tools, cost, analysis), the signed `call.completed`
event at a real receiver, and redelivery with the same event id."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from shared.db.engine import make_engine, make_sessions
from shared.db.models import Tenant
from shared.tenancy import api_keys
from tests.conftest import Platform
from tests.e2e.test_call_cost import analysing_llm  # noqa: F401  (fixture)
from tests.e2e.test_call_end_to_end import LINES, run_scripted_call
from tests.integration.test_webhooks import receiver, verify

pytestmark = pytest.mark.e2e

SCHEMA = {
    "type": "object",
    "properties": {"intent": {"type": "string", "enum": ["pricing", "booking", "other"]}},
    "required": ["intent"],
}


async def _keys(platform: Platform) -> tuple[str, str]:
    """An API key of Dave's Barbershop and one of another tenant."""
    engine = make_engine(platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            other = Tenant(slug="other-" + uuid.uuid4().hex[:8], name="Other")
            session.add(other)
            await session.commit()
            dave = await api_keys.create_for_tenant(session, "daves-barbershop", "calls-api")
            stranger = await api_keys.create_for_tenant(session, other.slug)
    finally:
        await engine.dispose()
    return dave, stranger


async def _wait_delivered(api: httpx.AsyncClient, call_sid: str, n: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        found = (await api.get("/v1/webhooks/deliveries", params={"call_sid": call_sid})).json()
        if found and found[0]["status"] == "delivered":
            detail = (await api.get(f"/v1/webhooks/deliveries/{found[0]['id']}")).json()
            if len(detail["attempt_log"]) >= n:
                return dict(detail)
        assert time.monotonic() < deadline, f"no delivered webhook for {call_sid}: {found}"
        await asyncio.sleep(0.1)


async def test_calls_api_and_webhook_for_a_real_call(
    platform: Platform,
    analysing_llm: None,  # noqa: F811
) -> None:
    dave_key, stranger_key = await _keys(platform)
    auth = {"Authorization": f"Bearer {dave_key}"}
    async with (
        receiver(failures=0) as hook,
        httpx.AsyncClient(base_url=platform.gateway, headers=auth, timeout=10) as api,
    ):
        put = await api.put("/v1/analysis/schema", json={"json_schema": SCHEMA})
        assert put.status_code == 200, put.text
        bad = await api.put("/v1/analysis/schema", json={"json_schema": {"type": "array"}})
        assert bad.status_code == 422
        created = await api.post("/v1/webhooks", json={"url": hook.url})
        assert created.status_code == 201, created.text
        endpoint = created.json()
        assert endpoint["secret"].startswith("whsec_")
        assert "secret" not in (await api.get("/v1/webhooks")).json()[0]

        try:
            result, _ = await run_scripted_call(platform)
            sid = result.call_sid
            delivery = await _wait_delivered(api, sid, 1)

            # --- list, filter, search ---------------------------------------------------
            listed = (await api.get("/v1/calls", params={"limit": 500})).json()
            assert sid in [c["call_sid"] for c in listed]
            outbound = (await api.get("/v1/calls", params={"direction": "outbound"})).json()
            assert sid not in [c["call_sid"] for c in outbound]
            hits = (await api.get("/v1/calls/search", params={"q": "haircut"})).json()
            mine = [h for h in hits if h["call_sid"] == sid]
            assert mine and mine[0]["role"] == "caller" and "[haircut]" in mine[0]["headline"]
            assert (await api.get("/v1/calls/search", params={"q": "zebra"})).json() == []

            # --- one call in detail -----------------------------------------------------
            detail = (await api.get(f"/v1/calls/{sid}")).json()
            caller = [x for x in detail["transcript"] if x["role"] == "caller"]
            assert [x["text"] for x in caller] == LINES
            starts = [x["start_ms"] for x in detail["transcript"]]
            assert all(s is not None for s in starts) and starts == sorted(starts)
            turns = [t for t in detail["turns"] if t["turn_id"] > 0]
            assert [t["caller_text"] for t in turns] == LINES
            for turn in turns:
                assert set(turn["stages_ms"]) >= {
                    "stt_final",
                    "llm_first_token",
                    "first_audio_sent",
                }
                assert set(turn["components_ms"]) >= {"stt", "llm", "total"}
                assert turn["heard_text"] and not turn["barged_in"]
            [tool] = detail["tool_calls"]
            assert tool["name"] == "get_business_info" and tool["ok"]
            assert tool["duration_ms"] is not None and tool["duration_ms"] >= 0
            cost = detail["cost"]
            assert Decimal(cost["total_minor"]) == sum(
                Decimal(x["amount_minor"]) for x in cost["lines"]
            )
            analysis = detail["analysis"]
            assert analysis["status"] == "done", analysis
            assert analysis["success"] is True and analysis["fields"] == {"intent": "pricing"}

            # --- the webhook the receiver got -------------------------------------------
            [(headers, body)] = hook.received
            assert verify(endpoint["secret"], headers, body)
            payload = json.loads(body)
            assert headers["x-frontdesk-event-id"] == payload["event_id"] == delivery["event_id"]
            assert payload["type"] == "call.completed" and payload["call"]["call_sid"] == sid
            assert [x["text"] for x in payload["transcript"] if x["role"] == "caller"] == LINES
            assert payload["analysis"]["fields"] == {"intent": "pricing"}
            assert payload["cost"]["total_minor"] and payload["bookings"] == []
            # issue 16: the call's recording, as the call API gives it (absolute URL here)
            recording = payload["call"]["recording_url"]
            assert recording == f"{platform.gateway}/v1/calls/{sid}/recording"
            assert payload["call"]["recording_duration_s"] == detail["recording_duration_s"] > 0
            assert detail["recording_url"] == f"/v1/calls/{sid}/recording"

            # --- redelivery: same event id, logged as a second attempt --------------------
            again = await api.post(f"/v1/webhooks/deliveries/{delivery['id']}/redeliver")
            assert again.status_code == 202 and again.json()["status"] == "pending"
            redelivered = await _wait_delivered(api, sid, 2)
            assert len(hook.received) == 2
            assert hook.received[1][0]["x-frontdesk-event-id"] == delivery["event_id"]
            assert [a["response_code"] for a in redelivered["attempt_log"]] == [200, 200]

            # --- tenant scoping -----------------------------------------------------------
            stranger = {"Authorization": f"Bearer {stranger_key}"}
            assert (await api.get(f"/v1/calls/{sid}", headers=stranger)).status_code == 404
            theirs = (
                await api.get("/v1/calls/search", params={"q": "haircut"}, headers=stranger)
            ).json()
            assert theirs == []
            redeliver = f"/v1/webhooks/deliveries/{delivery['id']}/redeliver"
            assert (await api.post(redeliver, headers=stranger)).status_code == 404
            assert (await api.get("/v1/calls", headers={"Authorization": ""})).status_code == 401
            assert (await api.get("/v1/calls/not-a-sid")).status_code == 422
        finally:
            off = await api.patch(f"/v1/webhooks/{endpoint['id']}", json={"active": False})
            assert off.status_code == 200 and off.json()["active"] is False
            assert (await api.delete(f"/v1/webhooks/{endpoint['id']}")).status_code == 204
