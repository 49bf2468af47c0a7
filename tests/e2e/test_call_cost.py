"""A scripted call through the running platform is metered and priced: the usage matches what
happened on the call, each cost line is quantity x unit price, and the total is their sum."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.engine import make_engine, make_sessions
from shared.db.models import Call, CallCost, CallEvent, CostLineItem, UsageRecord
from shared.tenancy.pricing import EXAMPLE_PRICES_GBP, line_amount
from sim.llm_policy import Policy, Rule, load_policy
from sim.twilio_webhook import sign_request
from tests.conftest import ROOT, Platform
from tests.e2e.test_call_end_to_end import run_scripted_call

pytestmark = pytest.mark.e2e

ANALYSIS_REPLY = (
    '{"summary": "The caller asked what a haircut costs and where the shop is.", '
    '"success": true, "fields": {"intent": "pricing"}}'
)
CALL_SECONDS = 65  # what Twilio's status callback reports: 2 started minutes


@pytest_asyncio.fixture
async def analysing_llm(platform: Platform) -> AsyncIterator[None]:
    """The LLM simulator answers the post-call analysis request with fixed JSON."""
    original = load_policy(ROOT / "sim" / "policies" / "daves_barbershop.yaml")
    with_analysis = Policy(
        rules=[Rule(match="FrontDesk post-call analysis", reply=ANALYSIS_REPLY), *original.rules],
        after_tool=original.after_tool,
        fallback=original.fallback,
    )
    url = f"http://127.0.0.1:{platform.stack.ports.llm}/sim/policy"
    async with httpx.AsyncClient() as http:
        (await http.post(url, content=with_analysis.model_dump_json())).raise_for_status()
        try:
            yield
        finally:
            (await http.post(url, content=original.model_dump_json())).raise_for_status()


async def post_status_callback(platform: Platform, call_sid: str, duration_s: int) -> int:
    """Twilio's signed `completed` status callback; returns the HTTP status."""
    url = platform.env["PUBLIC_GATEWAY_URL"] + "/twilio/status"
    params = {
        "CallSid": call_sid,
        "AccountSid": "AC" + "0" * 32,
        "CallStatus": "completed",
        "CallDuration": str(duration_s),
        "From": "+447700900123",
        "To": platform.tenant_number,
        "Direction": "inbound",
    }
    headers = {"X-Twilio-Signature": sign_request(platform.auth_token, url, params)}
    async with httpx.AsyncClient() as http:
        response = await http.post(
            platform.gateway + "/twilio/status", data=params, headers=headers
        )
    return response.status_code


async def wait_until_priced(
    sessions: async_sessionmaker[AsyncSession], call_sid: str, timeout_s: float = 30
) -> CallCost:
    """The call's cost once post-call work is done and telephony minutes are in (bounded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        async with sessions() as session:
            call = await session.get(Call, call_sid)
            cost = await session.get(CallCost, call_sid)
        if call and call.postcall_done_at and cost and cost.telephony_metered:
            return cost
        assert time.monotonic() < deadline, f"call {call_sid} was not priced"
        await asyncio.sleep(0.1)


async def test_call_cost_is_metered_usage_times_prices(
    platform: Platform, analysing_llm: None
) -> None:
    result, _ = await run_scripted_call(platform)
    sid = result.call_sid
    assert await post_status_callback(platform, sid, CALL_SECONDS) == 204
    assert await post_status_callback(platform, sid, CALL_SECONDS) == 204  # Twilio retried
    engine = make_engine(platform.infra.database_url)
    sessions = make_sessions(engine)
    try:
        cost = await wait_until_priced(sessions, sid)
        async with sessions() as session:
            lines = (
                await session.scalars(select(CostLineItem).where(CostLineItem.call_sid == sid))
            ).all()
            metered = (
                await session.execute(
                    select(
                        UsageRecord.provider,
                        UsageRecord.metric,
                        UsageRecord.source,
                        UsageRecord.quantity,
                    ).where(UsageRecord.call_sid == sid)
                )
            ).all()
            logged = (
                await session.scalars(
                    select(CallEvent.payload).where(
                        CallEvent.call_sid == sid,
                        CallEvent.type.in_(["usage", "audio.segment_sent"]),
                    )
                )
            ).all()
            n_telephony = await session.scalar(
                select(func.count())
                .select_from(UsageRecord)
                .where(UsageRecord.call_sid == sid, UsageRecord.metric == "telephony_minutes")
            )
    finally:
        await engine.dispose()

    # --- usage matches what happened -------------------------------------------------------
    usage: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for provider, metric, _, quantity in metered:
        usage[(provider, metric)] += quantity
    caller_audio_s = Decimal(result.frames_sent) * Decimal("0.02")
    assert abs(usage[("deepgram", "stt_seconds")] - caller_audio_s) <= Decimal("0.04")
    synthesized = sum(
        len(p["text"])
        for p in logged
        if p["type"] == "audio.segment_sent" and not p.get("cached")  # cached greeting: free
    )
    assert usage[("deepgram", "tts_characters")] == synthesized > 0
    model = "gpt-4o-mini"
    in_log = defaultdict(Decimal)
    for p in logged:
        if p["type"] == "usage" and p["provider"] == model:
            in_log[p["metric"]] += Decimal(str(p["quantity"]))
    analysis = {m: q for p, m, s, q in metered if s == "analysis"}
    assert analysis["prompt_tokens"] > 0 and analysis["completion_tokens"] > 0
    for metric in ("prompt_tokens", "completion_tokens"):
        assert in_log[metric] > 0
        assert usage[(model, metric)] == in_log[metric] + analysis[metric]
    assert usage[("twilio", "telephony_minutes")] == 2 and n_telephony == 1

    # --- each line is quantity x unit price; the total is their sum -------------------------
    assert {(x.provider, x.metric) for x in lines} == set(usage)
    prices = EXAMPLE_PRICES_GBP  # the tenant's currency (its spec says GBP), not the first table
    for line in lines:
        price = prices.unit_price(line.provider, line.metric)
        assert price is not None and line.priced, (line.provider, line.metric)
        assert line.quantity == usage[(line.provider, line.metric)]
        assert line.unit_price_minor == price
        assert line.amount_minor == line_amount(line.quantity, price)
    assert cost.currency == "GBP" and {line.currency for line in lines} == {"GBP"}
    assert cost.total_minor == sum(line.amount_minor for line in lines) > 0
