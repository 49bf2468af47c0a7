"""The analyst views (docs/analytics.md) on a seeded set of calls with known figures."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.engine import make_engine, make_sessions
from shared.db.models import (
    Booking,
    Call,
    CallAnalysis,
    CallCost,
    CostLineItem,
    Customer,
    Message,
    Resource,
    Service,
    Tenant,
    Turn,
)
from tests.conftest import Infra

DAY1 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def _sid() -> str:
    return "CA" + uuid.uuid4().hex


@pytest_asyncio.fixture
async def sessions(infra: Infra) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(infra.database_url)
    yield make_sessions(engine)
    await engine.dispose()


async def _seed(session: AsyncSession) -> tuple[str, str, dict[str, str]]:
    """Two tenants; returns (tenant a, tenant b, call sids by name)."""
    a = Tenant(slug="va-" + uuid.uuid4().hex[:8], name="A", timezone="Europe/London")
    b = Tenant(slug="vb-" + uuid.uuid4().hex[:8], name="B", timezone="America/New_York")
    session.add_all([a, b])
    await session.flush()
    service = Service(tenant_id=a.id, name="Cut", duration_min=30, price_minor=2500)
    resource = Resource(tenant_id=a.id, name="Dave")
    customer = Customer(tenant_id=a.id, phone="+447700900001", name="Sam")
    session.add_all([service, resource, customer])
    await session.flush()

    sids = {
        name: _sid()
        for name in ("booked", "transfer", "message", "error", "live", "quiet", "double", "b_night")
    }

    def call(name: str, tenant: str, at: datetime, **kw: Any) -> Call:
        values: dict[str, Any] = {
            "direction": "inbound",
            "status": "completed",
            "end_reason": "caller-hangup",
            "duration_s": 30.0,
            "stt_provider": "deepgram",
            "llm_provider": "gpt-x",
            "tts_provider": "deepgram",
        } | kw
        return Call(
            call_sid=sids[name],
            tenant_id=tenant,
            started_at=at,
            from_number="+1",
            to_number="+2",
            pipeline="cascade",
            **values,
        )

    session.add_all(
        [
            call("booked", a.id, DAY1, duration_s=60.0),
            call(
                "transfer",
                a.id,
                DAY1,
                duration_s=120.0,
                transfer_target="+441632960999",
                end_reason="transferred",
            ),
            call("message", a.id, DAY1),
            call("error", a.id, DAY1, direction="outbound", end_reason="provider-error: boom"),
            call("live", a.id, DAY1, status="in-progress", end_reason=None, duration_s=None),
            call("quiet", a.id, DAY2),
            call("double", a.id, DAY2),
            # 03:00 UTC on day 2 is still day 1 in New York
            call("b_night", b.id, DAY2.replace(hour=3)),
        ]
    )
    await session.flush()
    slot = DAY1 + timedelta(days=7)
    for i, name in enumerate(["booked", "double", "double"]):
        starts = slot + timedelta(hours=i)
        session.add(
            Booking(
                tenant_id=a.id,
                customer_id=customer.id,
                service_id=service.id,
                resource_id=resource.id,
                starts_at=starts,
                ends_at=starts + timedelta(minutes=30),
                blocked_until=starts + timedelta(minutes=30),
                call_sid=sids[name],
            )
        )
    session.add(Message(tenant_id=a.id, call_sid=sids["message"], body="call me back"))
    session.add_all(
        [
            CallAnalysis(
                call_sid=sids["booked"],
                tenant_id=a.id,
                status="done",
                summary="s",
                success=True,
                fields={},
            ),
            CallAnalysis(
                call_sid=sids["message"],
                tenant_id=a.id,
                status="done",
                summary="s",
                success=False,
                fields={},
            ),
        ]
    )
    # four turns: stt 100..400 ms, llm 500..800 ms, total 1000..1300 ms
    for i in range(4):
        t = DAY1 + timedelta(seconds=10 * i)
        session.add(
            Turn(
                call_sid=sids["booked"] if i < 2 else sids["transfer"],
                turn_id=i % 2 + 1,
                speech_end_at=t,
                stt_final_at=t + timedelta(milliseconds=100 * (i + 1)),
                llm_request_at=t + timedelta(seconds=1),
                llm_first_token_at=t + timedelta(seconds=1, milliseconds=500 + 100 * i),
                first_audio_sent_at=t + timedelta(milliseconds=1000 + 100 * i),
            )
        )
    session.add_all(
        [
            CallCost(
                call_sid=sids["booked"],
                tenant_id=a.id,
                currency="USD",
                total_minor=Decimal("10.5"),
                telephony_metered=False,
                computed_at=DAY1,
            ),
            CallCost(
                call_sid=sids["transfer"],
                tenant_id=a.id,
                currency="USD",
                total_minor=Decimal("4.5"),
                telephony_metered=True,
                computed_at=DAY1,
            ),
        ]
    )
    await session.flush()
    for sid, provider, metric, qty, amount in [
        (sids["booked"], "deepgram", "stt_seconds", "5", "0.5"),
        (sids["booked"], "gpt-x", "prompt_tokens", "1000", "10.0"),
        (sids["transfer"], "twilio", "telephony_minutes", "3", "4.5"),
    ]:
        session.add(
            CostLineItem(
                call_sid=sid,
                provider=provider,
                metric=metric,
                quantity=Decimal(qty),
                unit_price_minor=Decimal(amount) / Decimal(qty),
                amount_minor=Decimal(amount),
                currency="USD",
                priced=True,
            )
        )
    await session.commit()
    return a.id, b.id, sids


async def _rows(session: AsyncSession, sql: str, **params: Any) -> list[dict[str, Any]]:
    result = await session.execute(text(sql), params)
    return [dict(r._mapping) for r in result]


async def test_views_return_the_seeded_figures(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        a, b, sids = await _seed(session)
        outcomes = {
            r["call_sid"]: r["outcome"]
            for r in await _rows(session, "SELECT * FROM v_call_facts WHERE tenant_id = :t", t=a)
        }
        daily = await _rows(
            session,
            "SELECT * FROM v_daily_calls WHERE tenant_id IN (:a, :b) "
            "ORDER BY tenant_id = :a DESC, day",
            a=a,
            b=b,
        )
        conversion = await _rows(
            session, "SELECT * FROM v_booking_conversion WHERE tenant_id = :t ORDER BY day", t=a
        )
        latency = {
            (r["component"], r["provider"]): r
            for r in await _rows(
                session, "SELECT * FROM v_latency_percentiles WHERE tenant_id = :t", t=a
            )
        }
        costs = {
            r["call_sid"]: r
            for r in await _rows(session, "SELECT * FROM v_call_costs WHERE tenant_id = :t", t=a)
        }
        monthly_cost = await _rows(
            session, "SELECT * FROM v_tenant_monthly_cost WHERE tenant_id = :t", t=a
        )
        monthly_usage = await _rows(
            session,
            "SELECT * FROM v_tenant_monthly_usage WHERE tenant_id = :t ORDER BY provider, metric",
            t=a,
        )

    assert outcomes == {
        sids["booked"]: "booked",
        sids["transfer"]: "transferred",
        sids["message"]: "message_taken",
        sids["error"]: "error",
        sids["live"]: "in_progress",
        sids["quiet"]: "no_action",
        sids["double"]: "booked",
    }
    day1, day2, b_day = daily
    assert (day1["day"], day2["day"], b_day["day"]) == (
        date(2026, 3, 2),
        date(2026, 3, 3),
        date(2026, 3, 2),
    )
    assert {
        k: day1[k]
        for k in (
            "calls",
            "completed",
            "inbound",
            "outbound",
            "booked",
            "transferred",
            "message_taken",
            "errors",
            "no_action",
            "successful",
        )
    } == {
        "calls": 5,
        "completed": 4,
        "inbound": 4,
        "outbound": 1,
        "booked": 1,
        "transferred": 1,
        "message_taken": 1,
        "errors": 1,
        "no_action": 0,
        "successful": 1,
    }
    assert day1["total_duration_s"] == 60 + 120 + 30 + 30
    assert (day2["calls"], day2["booked"], day2["no_action"]) == (2, 1, 1)
    assert b_day["calls"] == 1 and b_day["tenant_id"] == b

    assert [
        (r["day"], r["calls"], r["calls_with_booking"], r["bookings"], r["conversion_rate"])
        for r in conversion
    ] == [
        (date(2026, 3, 2), 4, 1, 1, Decimal("0.2500")),
        (date(2026, 3, 3), 2, 1, 2, Decimal("0.5000")),
    ]

    stt = latency[("stt", "deepgram")]
    assert stt["turns"] == 4
    assert (stt["p50_ms"], stt["p90_ms"]) == (250.0, 370.0)
    llm = latency[("llm", "gpt-x")]
    assert (llm["p50_ms"], llm["p99_ms"]) == (650.0, 797.0)
    assert latency[("total", "cascade")]["p50_ms"] == 1150.0
    assert ("tts", "deepgram") not in latency  # no tts stamps seeded

    booked = costs[sids["booked"]]
    assert (
        booked["total_minor"],
        booked["stt_minor"],
        booked["llm_minor"],
        booked["telephony_minor"],
    ) == (Decimal("10.5"), Decimal("0.5"), Decimal("10.0"), 0)
    assert costs[sids["transfer"]]["telephony_minor"] == Decimal("4.5")
    [month] = monthly_cost
    assert (month["month"], month["calls"], month["total_minor"], month["avg_per_call_minor"]) == (
        date(2026, 3, 1),
        2,
        Decimal("15.0"),
        Decimal("7.5"),
    )
    assert [
        (r["provider"], r["metric"], r["quantity"], r["amount_minor"]) for r in monthly_usage
    ] == [
        ("deepgram", "stt_seconds", Decimal("5"), Decimal("0.5")),
        ("gpt-x", "prompt_tokens", Decimal("1000"), Decimal("10.0")),
        ("twilio", "telephony_minutes", Decimal("3"), Decimal("4.5")),
    ]
