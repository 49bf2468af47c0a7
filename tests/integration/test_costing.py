"""Cost of a recorded call: line items = metered usage x unit price; total = sum of the lines;
telephony minutes that arrive after the call are priced in on recomputation."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.recorder.follower import record_call
from services.recorder.postcall import recost
from shared.bus.streams import CallLog
from shared.db.models import CallCost, CostLineItem, UsageRecord
from shared.tenancy.pricing import PriceTableError, load_price_table
from sim.twilio_webhook import new_sid
from tests.conftest import Infra
from tests.integration.test_recorder_persistence import make_tenant, recorder, scripted_call

PRICES = load_price_table(
    """{"currency": "gbp", "prices": [
        {"provider": "deepgram", "metric": "stt_seconds", "unit_price_minor": "0.1"},
        {"provider": "deepgram", "metric": "tts_characters", "unit_price_minor": "0.0021"},
        {"provider": "*", "metric": "prompt_tokens", "unit_price_minor": "0.000123"},
        {"provider": "twilio", "metric": "telephony_minutes", "unit_price_minor": "1.5"}]}"""
)
# What the scripted call meters (see scripted_call) and what each unit costs.
EXPECTED = {
    ("deepgram", "stt_seconds"): (Decimal("6.48"), Decimal("0.1")),
    ("deepgram", "tts_characters"): (Decimal("41"), Decimal("0.0021")),
    ("gpt-x", "prompt_tokens"): (Decimal("120"), Decimal("0.000123")),
    ("gpt-x", "completion_tokens"): (Decimal("9"), None),  # no price in the table
}


async def _lines(
    sessions: async_sessionmaker[AsyncSession], sid: str
) -> dict[tuple[str, str], CostLineItem]:
    async with sessions() as session:
        rows = (
            await session.scalars(select(CostLineItem).where(CostLineItem.call_sid == sid))
        ).all()
    return {(r.provider, r.metric): r for r in rows}


async def test_call_cost_is_the_sum_of_priced_usage(infra: Infra, call_log: CallLog) -> None:
    sid = new_sid("CA")
    async with recorder(infra, call_log, PRICES) as deps:
        tenant_id = await make_tenant(deps.sessions)
        for event in scripted_call(sid, tenant_id, time.time() - 60):
            await call_log.append(event)
        await record_call(deps, sid)  # stores the call, then prices it
        lines = await _lines(deps.sessions, sid)
        async with deps.sessions() as session:
            cost = await session.get(CallCost, sid)

        assert set(lines) == set(EXPECTED)
        for key, (quantity, price) in EXPECTED.items():
            line = lines[key]
            assert line.quantity == quantity, key
            assert line.priced is (price is not None), key
            assert line.amount_minor == (quantity * price if price is not None else 0), key
            assert line.currency == "GBP"
        assert cost is not None and cost.currency == "GBP" and not cost.telephony_metered
        expected_total = Decimal("0.648") + Decimal("0.0861") + Decimal("0.01476")
        assert cost.total_minor == expected_total == sum(x.amount_minor for x in lines.values())

        # Twilio's status callback reports the duration after the call: priced in on recost.
        async with deps.sessions() as session:
            await session.execute(
                insert(UsageRecord).values(
                    call_sid=sid,
                    tenant_id=tenant_id,
                    source="twilio-status",
                    provider="twilio",
                    metric="telephony_minutes",
                    quantity=Decimal(2),
                    at=func.now(),
                )
            )
            await session.commit()
        await recost(deps.postcall, sid)
        await recost(deps.postcall, sid)  # idempotent
        lines = await _lines(deps.sessions, sid)
        async with deps.sessions() as session:
            cost = await session.get(CallCost, sid)
    assert lines[("twilio", "telephony_minutes")].amount_minor == Decimal("3.0")
    assert len(lines) == len(EXPECTED) + 1
    assert cost is not None and cost.telephony_metered
    assert cost.total_minor == expected_total + 3 == sum(x.amount_minor for x in lines.values())


def test_a_bad_price_table_is_refused_with_a_clear_error() -> None:
    with pytest.raises(PriceTableError, match="PRICE_TABLE_JSON"):
        load_price_table('{"currency": "USD", "prices": [{"provider": "x", "metric": "y"}]}')
    with pytest.raises(PriceTableError):
        load_price_table(
            '{"currency": "USD", "prices": [{"provider": "x", "metric": "y", '
            '"unit_price_minor": "-1"}]}'
        )


def test_the_providers_own_price_wins_over_the_wildcard() -> None:
    table = load_price_table(
        '{"currency": "USD", "prices": ['
        '{"provider": "*", "metric": "prompt_tokens", "unit_price_minor": "1"},'
        '{"provider": "groq", "metric": "prompt_tokens", "unit_price_minor": "0.5"}]}'
    )
    assert table.unit_price("groq", "prompt_tokens") == Decimal("0.5")
    assert table.unit_price("openai", "prompt_tokens") == Decimal("1")
    assert table.unit_price("openai", "completion_tokens") is None
