"""The outbound-calls API's refusals on the running gateway: invalid details (422, nothing
stored), the per-tenant rate limit (429 with Retry-After), and tenant scoping (401, 404)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from shared.db.engine import make_engine, make_sessions
from shared.db.models import OutboundCallRequest
from tests.conftest import Platform
from tests.e2e.test_outbound_calls import BUSY, make_caller_tenant, reservation

pytestmark = pytest.mark.e2e


async def _requests_of(platform: Platform, tenant_id: str) -> list[OutboundCallRequest]:
    engine = make_engine(platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            rows = await session.scalars(
                select(OutboundCallRequest)
                .where(OutboundCallRequest.tenant_id == tenant_id)
                .order_by(OutboundCallRequest.created_at)
            )
            return list(rows.all())
    finally:
        await engine.dispose()


def _with(details: dict[str, Any]) -> dict[str, Any]:
    body = reservation(BUSY)
    body["details"] |= details
    return body


INVALID: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    (_with({"restaurant_number": "020 7946 0000"}), ("details", "restaurant_number")),
    (_with({"callback_number": "+0123"}), ("details", "callback_number")),
    (_with({"party_size": 0}), ("details", "party_size")),
    (_with({"party_size": 21}), ("details", "party_size")),
    (_with({"date_time": "2020-01-01T19:00"}), ("details", "date_time")),
    (_with({"date_time": "next friday"}), ("details", "date_time")),
    (_with({"date_time": "2031-06-13T19:00+02:00"}), ("details", "date_time")),
    (_with({"customer_name": "  "}), ("details", "customer_name")),
    (_with({"flexibility_minutes": -5}), ("details", "flexibility_minutes")),
    ({**reservation(BUSY), "purpose": "pizza_order"}, ("purpose",)),
    ({"purpose": "restaurant_reservation"}, ("details",)),
    (reservation(BUSY, max_retries=99), ("max_retries",)),
    (reservation(BUSY, retry_delay_s=0.01), ("retry_delay_s",)),
]


async def test_outbound_call_validation(platform: Platform) -> None:
    tenant_id, _, key = await make_caller_tenant(platform, "outbound-422")
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=platform.gateway, headers=headers, timeout=10) as api:
        for body, where in INVALID:
            response = await api.post("/v1/outbound-calls", json=body)
            assert response.status_code == 422, (body, response.text)
            locations = [tuple(err["loc"][1 : 1 + len(where)]) for err in response.json()["detail"]]
            assert where in locations, (where, response.json())
    assert await _requests_of(platform, tenant_id) == []


async def test_outbound_call_rate_limit_and_scoping(platform: Platform) -> None:
    tenant_id, _, key = await make_caller_tenant(platform, "outbound-429")
    _, _, stranger_key = await make_caller_tenant(platform, "outbound-other")
    headers = {"Authorization": f"Bearer {key}"}
    limit = 10  # OUTBOUND_RATE_LIMIT's default, per 60 s
    body = reservation(BUSY, max_retries=0)
    async with httpx.AsyncClient(base_url=platform.gateway, headers=headers, timeout=10) as api:
        accepted = await asyncio.gather(
            *(api.post("/v1/outbound-calls", json=body) for _ in range(limit))
        )
        assert [r.status_code for r in accepted] == [202] * limit
        refused = await api.post("/v1/outbound-calls", json=body)
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        rows = await _requests_of(platform, tenant_id)
        assert len(rows) == limit

        first = accepted[0].json()["id"]
        assert (await api.get(f"/v1/outbound-calls/{first}")).status_code == 200
        stranger = {"Authorization": f"Bearer {stranger_key}"}
        assert (await api.get(f"/v1/outbound-calls/{first}", headers=stranger)).status_code == 404
        anonymous = await api.get(f"/v1/outbound-calls/{first}", headers={"Authorization": ""})
        assert anonymous.status_code == 401

        # every accepted call was placed once and came back busy (no retries were asked for)
        deadline = time.monotonic() + 60
        while True:
            rows = await _requests_of(platform, tenant_id)
            if all(r.status == "completed" for r in rows):
                break
            assert time.monotonic() < deadline, [(r.status, r.last_call_status) for r in rows]
            await asyncio.sleep(0.2)
    assert {(r.outcome, r.attempts, len(r.twilio_call_sids)) for r in rows} == {("busy", 1, 1)}

    engine = make_engine(platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(OutboundCallRequest)
                .where(OutboundCallRequest.tenant_id == tenant_id)
            )
    finally:
        await engine.dispose()
    assert count == limit
