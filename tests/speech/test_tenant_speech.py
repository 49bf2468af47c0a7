"""Speech chosen per tenant (issue 15, items 3 and 7): in one deployment whose providers are the
simulators, a tenant with `speech: local` is heard by Whisper and answered in Piper's voice
through the speech service, and a tenant on the vendor path is served by the (simulated)
Deepgram. Each call's usage is metered under its own provider and priced in Postgres: the
local call's STT and TTS lines under 'local', at compute, next to the vendor call's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from frontdesk.supervisor import Ports, Stack, service_env, start_services, start_sims, start_speech
from shared.db.engine import make_engine, make_sessions
from shared.db.models import Call, CallCost, CallEvent, CostLineItem
from shared.runtime.embedded import Embedded, child_env
from shared.tenancy import api_keys
from shared.tenancy.pricing import (
    CPU_SECOND_MINOR,
    EXAMPLE_PRICES_GBP,
    LOCAL_STT_CPU_PER_AUDIO_SECOND,
    LOCAL_TTS_CPU_PER_CHARACTER,
    line_amount,
)
from shared.tenancy.tenant_apply import apply, load_spec
from sim.twilio_caller import CallResult, CallScript, TwilioCallerOptions, place_call
from sim.twilio_webhook import new_sid
from tests.conftest import Infra, Platform
from tests.e2e.test_call_end_to_end import wait_for_record

ROOT = Path(__file__).resolve().parents[2]
LOCAL_NUMBER = "+441632960077"
VENDOR_LINES = ["Hi, how much is a haircut?", "Great, thanks, bye."]
LOCAL_LINES = ["Hi, how much is a haircut?", "Goodbye."]
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def mixed_platform(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The five services on the simulators (Deepgram STT/TTS, scripted LLM) plus the speech
    service; Dave's Barbershop on the vendor path and a copy of it on `speech: local`."""
    vendor = load_spec(ROOT / "deploy" / "tenants" / "daves-barbershop.yaml")
    local = vendor.model_copy(
        update={
            "slug": "daves-local-speech",
            "speech": "local",
            "numbers": [vendor.numbers[0].model_copy(update={"e164": LOCAL_NUMBER})],
        }
    )

    async def seed() -> None:
        engine = make_engine(infra.database_url)
        async with make_sessions(engine)() as session:
            await apply(session, vendor)
            await apply(session, local)
        await engine.dispose()

    asyncio.run(seed())
    stack = Stack(ports=Ports.random(), log_dir=tmp_path_factory.mktemp("tenant-speech-logs"))
    embedded = Embedded(redis_url=infra.redis_url, database_url=infra.database_url)
    env = child_env(
        embedded,
        service_env(stack.ports, with_sims=True)  # the deployment's providers: the simulators
        | {
            "SPEECH_PORT": str(stack.ports.speech),
            "SPEECH_URL": f"ws://127.0.0.1:{stack.ports.speech}",
            "TWILIO_AUTH_TOKEN": "test-auth-token",
            "STREAM_TOKEN_SECRET": "test-stream-secret",
            "SILENCE_REPROMPT_S": "6",
            "SILENCE_HANGUP_S": "5",
        },
    )
    try:
        start_sims(stack, env, policy=str(ROOT / "sim" / "policies" / "daves_barbershop.yaml"))
        start_speech(stack, env)
        start_services(stack, env, timeout_s=180)  # next to a loading speech service
        yield Platform(stack=stack, env=env, infra=infra, tenant_number=vendor.numbers[0].e164)
    finally:
        stack.stop()


async def vendor_call(platform: Platform) -> CallResult:
    """A scripted caller: the Deepgram simulator is told each line's words."""
    options = TwilioCallerOptions(
        gateway_url=platform.gateway,
        auth_token=platform.auth_token,
        to_number=platform.tenant_number,
        call_sid=new_sid("CA"),
        stt_control_url=platform.stt_control,
    )
    result = await place_call(options, CallScript(lines=list(VENDOR_LINES)))
    assert result.error is None, result.error
    return result


async def local_call(platform: Platform) -> CallResult:
    """A speaking caller (Piper audio, nothing told to any simulator): only a recogniser that
    hears the audio can transcribe it."""
    options = TwilioCallerOptions(
        gateway_url=platform.gateway,
        auth_token=platform.auth_token,
        to_number=LOCAL_NUMBER,
        call_sid=new_sid("CA"),
        tts_url=f"ws://127.0.0.1:{platform.stack.ports.speech}",
        tts_api_key=platform.env["DEEPGRAM_API_KEY"],
        answer_timeout_s=45,
        max_call_s=180,
    )
    result = await place_call(options, CallScript(lines=list(LOCAL_LINES)))
    assert result.error is None, result.error
    return result


async def priced_lines(
    database_url: str, call_sid: str, timeout_s: float = 60
) -> tuple[CallCost, list[CostLineItem], list[dict[str, object]]]:
    """The call's cost, its lines and its logged usage events, once post-call work is done."""
    engine = make_engine(database_url)
    sessions = make_sessions(engine)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            async with sessions() as session:
                call = await session.get(Call, call_sid)
                cost = await session.get(CallCost, call_sid)
                if call is not None and call.postcall_done_at is not None and cost is not None:
                    lines = await session.scalars(
                        select(CostLineItem).where(CostLineItem.call_sid == call_sid)
                    )
                    usage = await session.scalars(
                        select(CallEvent.payload).where(
                            CallEvent.call_sid == call_sid, CallEvent.type == "usage"
                        )
                    )
                    return cost, list(lines), [dict(u) for u in usage]
            assert time.monotonic() < deadline, f"call {call_sid} was not priced"
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


def speech_lines(lines: list[CostLineItem]) -> dict[tuple[str, str], CostLineItem]:
    return {
        (li.provider, li.metric): li
        for li in lines
        if li.metric in ("stt_seconds", "tts_characters")
    }


async def test_a_local_speech_tenant_and_a_vendor_tenant_in_one_deployment(
    mixed_platform: Platform,
) -> None:
    platform = mixed_platform
    vendor_result = await vendor_call(platform)
    local_result = await local_call(platform)
    vendor_record = await wait_for_record(platform.infra.database_url, vendor_result.call_sid)
    local_record = await wait_for_record(platform.infra.database_url, local_result.call_sid)

    # --- who heard each call ----------------------------------------------------------------
    assert [ln.text for ln in vendor_record.lines if ln.role == "caller"] == VENDOR_LINES
    local_heard = " ".join(ln.text for ln in local_record.lines if ln.role == "caller").lower()
    assert "haircut" in local_heard, local_heard  # Whisper's words: the simulator was told none
    assert any(ln.role == "agent" for ln in local_record.lines)

    # --- what each call is metered and priced at ---------------------------------------------
    _, vendor_lines, _ = await priced_lines(platform.infra.database_url, vendor_result.call_sid)
    cost, local_lines, usage = await priced_lines(
        platform.infra.database_url, local_result.call_sid
    )
    assert set(speech_lines(vendor_lines)) == {
        ("deepgram", "stt_seconds"),
        ("deepgram", "tts_characters"),
    }
    local = speech_lines(local_lines)
    assert set(local) == {("local", "stt_seconds"), ("local", "tts_characters")}
    caller_audio_s = Decimal(local_result.frames_sent) * Decimal("0.02")
    assert abs(local[("local", "stt_seconds")].quantity - caller_audio_s) <= Decimal("0.04")
    spoken = sum(float(str(u["quantity"])) for u in usage if u["metric"] == "tts_characters")
    assert local[("local", "tts_characters")].quantity == Decimal(str(spoken)) > 0
    gbp = Decimal("0.8")  # the tenant pays in GBP: the example GBP table is USD x 0.8
    compute_price = {
        "stt_seconds": CPU_SECOND_MINOR * LOCAL_STT_CPU_PER_AUDIO_SECOND * gbp,
        "tts_characters": CPU_SECOND_MINOR * LOCAL_TTS_CPU_PER_CHARACTER * gbp,
    }
    for (provider, metric), line in local.items():
        assert line.priced and line.currency == cost.currency == "GBP"
        assert line.unit_price_minor == compute_price[metric]
        assert line.unit_price_minor == EXAMPLE_PRICES_GBP.unit_price(provider, metric)
        assert line.amount_minor == line_amount(line.quantity, line.unit_price_minor)
        vendor_price = EXAMPLE_PRICES_GBP.unit_price("deepgram", metric)
        assert vendor_price is not None and line.unit_price_minor * 40 < vendor_price

    # --- the calls API says what the local lines cover ---------------------------------------
    engine = make_engine(platform.infra.database_url)
    try:
        async with make_sessions(engine)() as session:
            key = await api_keys.create_for_tenant(session, "daves-local-speech", "speech-test")
            await session.commit()
    finally:
        await engine.dispose()
    async with httpx.AsyncClient(base_url=platform.gateway) as api:
        response = await api.get(
            f"/v1/calls/{local_result.call_sid}", headers={"Authorization": f"Bearer {key}"}
        )
    assert response.status_code == 200, response.text
    basis = {(li["provider"], li["metric"]): li["basis"] for li in response.json()["cost"]["lines"]}
    assert basis[("local", "stt_seconds")] == basis[("local", "tts_characters")] == "compute"
