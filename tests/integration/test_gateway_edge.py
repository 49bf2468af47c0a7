"""The gateway's edge, in process against real Redis and Postgres: bodies are bounded before
anything parses them, unsigned Twilio webhooks are refused unread, malformed signed fields get
a 400 (never a 500), and `/twilio/voice` answers once per CallSid."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from shared.bus.streams import CallLog, connect
from shared.contract.events import CallStarted
from shared.db.engine import make_engine, make_sessions
from shared.tenancy.tenant_apply import apply, load_spec
from sim.twilio_webhook import inbound_call_params, new_sid, sign_request
from tests.conftest import Infra
from tests.integration.gateway_inprocess import AUTH_TOKEN, BASE, gateway_client, gateway_settings

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_spec(ROOT / "deploy" / "tenants" / "daves-barbershop.yaml")
VOICE = BASE + "/twilio/voice"
MB = 1024 * 1024


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def seeded(private_infra: Infra) -> Infra:
    engine = make_engine(private_infra.database_url)
    async with make_sessions(engine)() as session:
        await apply(session, SPEC)
    await engine.dispose()
    return private_infra


class Body:
    """A streamed request body that counts how many bytes the server pulled from it."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.pulled = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            piece = b"a" * min(self.chunk, self.total - self.pulled)
            self.pulled += len(piece)
            yield piece


def _params(**extra: str) -> dict[str, str]:
    params = inbound_call_params(
        call_sid=new_sid("CA"),
        account_sid=new_sid("AC"),
        from_number="+447700900123",
        to_number=SPEC.numbers[0].e164,
    )
    return params | extra


def _signed(params: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature": sign_request(AUTH_TOKEN, VOICE, params)}


async def test_unsigned_50mb_post_is_refused_before_its_body_is_read(seeded: Infra) -> None:
    body = Body(50 * MB)
    async with gateway_client(gateway_settings(seeded)) as client:
        response = await client.post(
            "/twilio/voice",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 403
    assert "X-Twilio-Signature" in response.json()["detail"]
    assert body.pulled <= body.chunk  # at most what the client pushed before the answer


async def test_declared_oversized_twilio_body_gets_413_unread(seeded: Infra) -> None:
    body = Body(50 * MB)
    async with gateway_client(gateway_settings(seeded)) as client:
        response = await client.post(
            "/twilio/voice",
            content=body,
            headers={
                "X-Twilio-Signature": "anything",
                "Content-Length": str(50 * MB),
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
    assert response.status_code == 413
    assert "16384 bytes" in response.json()["detail"]
    assert body.pulled <= body.chunk


async def test_chunked_body_is_counted_and_cut_off_at_the_limit(seeded: Infra) -> None:
    body = Body(50 * MB, chunk=4096)
    async with gateway_client(gateway_settings(seeded)) as client:
        response = await client.post(
            "/twilio/voice",
            content=body,  # no Content-Length: streamed
            headers={
                "X-Twilio-Signature": "anything",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
    assert response.status_code == 413
    assert body.pulled <= 16384 + 2 * body.chunk


async def test_admin_api_has_its_own_larger_bound(seeded: Infra) -> None:
    settings = gateway_settings(seeded, api_body_max_bytes=100_000)
    big = Body(1 * MB, chunk=8192)
    async with gateway_client(settings) as client:
        response = await client.post(
            "/v1/webhooks",
            content=big,
            headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
        )
        assert response.status_code == 413
        assert "100000 bytes" in response.json()["detail"]
        assert big.pulled <= 100_000 + 2 * big.chunk
        small = await client.post("/v1/webhooks", json={"url": "https://example.com/hook"})
    assert small.status_code == 401  # under the limit: the route runs (and wants a key)


async def test_malformed_content_length_is_a_400(seeded: Infra) -> None:
    async with gateway_client(gateway_settings(seeded)) as client:
        response = await client.post(
            "/v1/webhooks", content=b"{}", headers={"Content-Length": "12x"}
        )
    assert response.status_code == 400
    assert "Content-Length" in response.json()["detail"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("CallSid", "CA" + "0" * 31 + "\x00", "NUL"),
        ("CallSid", "CA" + "z" * 32, "CallSid is malformed"),
        ("CallSid", "CA" + "0" * 33, "CallSid is malformed"),
        ("To", "+44\x00123", "NUL"),
        ("From", "+4477009001230000000", "From is not a phone number"),
        ("From", "<script>", "From is not a phone number"),
        ("Digits", "12x", "Digits"),
        ("FromCity", "x" * 5000, "too long"),
        ("AccountSid", "AC123", "AccountSid is malformed"),
    ],
)
async def test_malformed_signed_fields_get_400_not_500(
    seeded: Infra, field: str, value: str, message: str
) -> None:
    params = _params(**{field: value})
    async with gateway_client(gateway_settings(seeded)) as client:
        response = await client.post("/twilio/voice", data=params, headers=_signed(params))
    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]


async def test_withheld_and_sip_callers_are_accepted(seeded: Infra) -> None:
    async with gateway_client(gateway_settings(seeded)) as client:
        for caller in ("anonymous", "sip:alice@example.com", "client:kiosk", "+15005550006"):
            params = _params(From=caller, Caller=caller)
            response = await client.post("/twilio/voice", data=params, headers=_signed(params))
            assert response.status_code == 200, (caller, response.text)
            assert "<Stream" in response.text


async def _started(infra: Infra, call_sid: str) -> list[CallStarted]:
    redis = connect(infra.redis_url)
    try:
        entries = await CallLog(redis, 16).entries(call_sid)
    finally:
        await redis.aclose()
    return [e for _, e in entries if isinstance(e, CallStarted)]


async def test_replayed_voice_request_starts_no_second_call(seeded: Infra) -> None:
    params = _params()
    async with gateway_client(gateway_settings(seeded)) as client:
        first = await client.post("/twilio/voice", data=params, headers=_signed(params))
        replay = await client.post("/twilio/voice", data=params, headers=_signed(params))
    assert first.status_code == replay.status_code == 200
    assert "<Stream" in first.text
    assert replay.text == first.text  # the same TwiML, the same (single-use) stream token
    assert len(await _started(seeded, params["CallSid"])) == 1


async def test_concurrent_duplicates_start_one_call_and_share_the_answer(seeded: Infra) -> None:
    params = _params()
    async with gateway_client(gateway_settings(seeded)) as client:
        responses = await asyncio.gather(
            *(client.post("/twilio/voice", data=params, headers=_signed(params)) for _ in range(6))
        )
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1
    assert len(await _started(seeded, params["CallSid"])) == 1


async def test_forged_replay_with_another_callsid_signature_is_403(seeded: Infra) -> None:
    params = _params()
    other = _params()
    async with gateway_client(gateway_settings(seeded)) as client:
        response = await client.post("/twilio/voice", data=params, headers=_signed(other))
    assert response.status_code == 403
    assert await _started(seeded, params["CallSid"]) == []


@pytest.mark.parametrize(
    "target",
    [
        "/v1/calls?end_reason=a%00b",
        "/v1/calls/search?q=%00",
        "/v1/calls/CA%00",
        "/v1/webhooks/deliveries?call_sid=CA%00",
        "/v1/numbers/%2B44%00",
        "/v1/outbound-calls/x%00",
        "/v1/bookings?status=%00",
        "/v1/tenant?x=%00",
    ],
)
async def test_nul_in_any_path_or_query_is_a_422_not_a_500(seeded: Infra, target: str) -> None:
    async with gateway_client(gateway_settings(seeded)) as client:
        response = await client.get(target, headers={"Authorization": "Bearer fd_x"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "NUL is not allowed"
