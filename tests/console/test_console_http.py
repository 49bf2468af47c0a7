"""The console over HTTP, in process against real Redis and Postgres: sign-in and its cookie,
isolation between tenants, the operator's view, CSRF on the redeliver button, bad input as
4xx, and /docs with every asset served locally."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest_asyncio
from sqlalchemy import update

from services.gateway.console import session as cookies
from shared.bus.streams import CallLog, connect
from shared.contract.events import CallEnded, CallStarted, TranscriptFinal, TurnRequested
from shared.db.engine import make_engine, make_sessions
from shared.db.models import ApiKey, Call, Resource, Service, TranscriptLine, WebhookDelivery
from shared.db.models import WebhookEndpoint as Endpoint
from tests.conftest import Infra
from tests.integration.admin_support import (
    KeyedTenant,
    Sessions,
    add_booking,
    add_customer,
    make_tenant,
)
from tests.integration.gateway_inprocess import gateway_client, gateway_settings

OPERATOR_KEY = "operator-key-for-console-tests"


@dataclass
class World:
    sessions: Sessions
    a: KeyedTenant
    b: KeyedTenant
    a_call: str
    b_call: str
    a_delivery: str


def _sid() -> str:
    return "CA" + uuid.uuid4().hex


async def _call(sessions: Sessions, tenant: KeyedTenant, words: str, *, live: bool = False) -> str:
    """A call row with one caller line (finished 30 s long, or still in progress)."""
    sid = _sid()
    now = datetime.now(UTC)
    async with sessions() as session:
        session.add(
            Call(
                call_sid=sid,
                tenant_id=tenant.id,
                from_number="+447700900001",
                to_number="+441632960001",
                status="in-progress" if live else "completed",
                started_at=now if live else now - timedelta(seconds=30),
                ended_at=None if live else now,
                duration_s=None if live else 30.0,
            )
        )
        await session.flush()
        session.add(
            TranscriptLine(
                call_sid=sid,
                entry_id="1-0",
                turn_id=1,
                role="caller",
                text=words,
                at=now,
                start_ms=1000,
                end_ms=2500,
            )
        )
        await session.commit()
    return sid


@pytest_asyncio.fixture(scope="module")
async def world(private_infra: Infra) -> AsyncIterator[World]:
    """Two tenants and their calls in a database of this module's own (the running platform's
    reaper, which ends calls without a stream, never sees them)."""
    engine = make_engine(private_infra.database_url)
    sessions = make_sessions(engine)
    a = await make_tenant(sessions, "console-a")
    b = await make_tenant(sessions, "console-b")
    a_call = await _call(sessions, a, "I would like a haircut with Dave on Friday")
    b_call = await _call(sessions, b, "Do you sell gift vouchers")
    async with sessions() as session:
        endpoint = Endpoint(tenant_id=a.id, url="https://hooks.example.com/x", secret="whsec_x")
        session.add(endpoint)
        await session.flush()
        delivery = WebhookDelivery(
            event_id="evt_" + uuid.uuid4().hex,
            event_type="call.completed",
            endpoint_id=endpoint.id,
            tenant_id=a.id,
            call_sid=a_call,
            payload={},
            status="failed",
            attempts=5,
            next_attempt_at=datetime.now(UTC),
            last_error="HTTP 500",
        )
        session.add(delivery)
        await session.commit()
        delivery_id = delivery.id
    yield World(sessions, a, b, a_call, b_call, delivery_id)
    await engine.dispose()


@pytest_asyncio.fixture
async def client(private_infra: Infra) -> AsyncIterator[httpx.AsyncClient]:
    settings = gateway_settings(private_infra, operator_api_key=OPERATOR_KEY)
    async with gateway_client(settings) as client:
        yield client


async def _sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post("/console/sign-in", data={"key": key})


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def test_pages_need_a_session(client: httpx.AsyncClient) -> None:
    page = await client.get("/console/calls", headers={"accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/console/sign-in"
    stream = await client.get("/console/live/stream")
    assert stream.status_code == 401
    forged = cookies.sign(cookies.new_session("x", "y", True, 600), b"not-the-gateway-secret")
    client.cookies.set(cookies.COOKIE, forged)
    assert (await client.get("/console/calls")).status_code == 401


async def test_bad_keys_are_refused(client: httpx.AsyncClient, world: World) -> None:
    for key in ["", "fd_" + "x" * 32, world.a.key + "x", "operator"]:
        answer = await _sign_in(client, key)
        assert answer.status_code == 401, key
        assert "not valid" in answer.text and cookies.COOKIE not in answer.cookies
    too_long = await _sign_in(client, "k" * 5000)
    assert too_long.status_code == 422


async def test_tenant_sees_only_its_own_calls(client: httpx.AsyncClient, world: World) -> None:
    signed = await _sign_in(client, world.a.key)
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert world.a.key not in signed.headers["set-cookie"]
    calls = await client.get("/console/calls")
    assert calls.status_code == 200
    assert world.a_call in calls.text and world.b_call not in calls.text
    assert (await client.get(f"/console/calls/{world.a_call}")).status_code == 200
    assert (await client.get(f"/console/calls/{world.b_call}")).status_code == 404
    found = await client.get("/console/calls", params={"q": "haircut Friday"})
    assert world.a_call in found.text
    missed = await client.get("/console/calls", params={"q": "vouchers"})
    assert world.a_call not in missed.text and world.b_call not in missed.text
    for path in ["/console", "/console/live", "/console/bookings", "/console/business"]:
        page = await client.get(path)
        assert page.status_code == 200, path
        assert "console-b" not in page.text, path


async def test_bad_filters_are_4xx(client: httpx.AsyncClient, world: World) -> None:
    await _sign_in(client, world.a.key)
    for params in [
        {"status": "nope"},
        {"day_from": "yesterday"},
        {"page": "-1"},
        {"number": "abc"},
        {"q": "x" * 300},
    ]:
        answer = await client.get("/console/calls", params=params)
        assert answer.status_code == 422, params
    assert (await client.get("/console/calls/not-a-sid")).status_code == 422
    assert (await client.get("/console/bookings", params={"view": "year"})).status_code == 422
    assert (await client.get("/console", params={"days": "1000"})).status_code == 422
    assert (await client.get("/console/business", params={"tenant": "nobody"})).status_code == 404


async def test_redeliver_needs_the_csrf_token(client: httpx.AsyncClient, world: World) -> None:
    await _sign_in(client, world.a.key)
    page = await client.get(f"/console/calls/{world.a_call}")
    url = f"/console/calls/{world.a_call}/deliveries/{world.a_delivery}/redeliver"
    assert (await client.post(url)).status_code == 403
    assert (await client.post(url, data={"csrf": "forged"})).status_code == 403
    async with world.sessions() as session:
        still = await session.get(WebhookDelivery, world.a_delivery)
        assert still is not None and still.status == "failed"
    done = await client.post(url, data={"csrf": _csrf(page.text)})
    assert done.status_code == 303
    async with world.sessions() as session:
        again = await session.get(WebhookDelivery, world.a_delivery)
        assert again is not None and again.status == "pending" and again.attempts == 0
    # another tenant cannot redeliver it, even with a valid session and token of its own
    other = await _sign_in(client, world.b.key)
    assert other.status_code == 303
    b_page = await client.get("/console/calls")
    foreign = await client.post(url, data={"csrf": _csrf(b_page.text)})
    assert foreign.status_code == 404


async def test_revoking_the_key_ends_the_session(
    client: httpx.AsyncClient, private_infra: Infra
) -> None:
    engine = make_engine(private_infra.database_url)
    sessions = make_sessions(engine)
    tenant = await make_tenant(sessions, "console-revoke")
    await _sign_in(client, tenant.key)
    assert (await client.get("/console/calls")).status_code == 200
    async with sessions() as session:
        await session.execute(
            update(ApiKey).where(ApiKey.tenant_id == tenant.id).values(revoked_at=datetime.now(UTC))
        )
        await session.commit()
    await engine.dispose()
    assert (await client.get("/console/calls")).status_code == 401


async def test_operator_sees_every_tenant(client: httpx.AsyncClient, world: World) -> None:
    assert (await _sign_in(client, OPERATOR_KEY)).status_code == 303
    calls = await client.get("/console/calls")
    assert world.a_call in calls.text and world.b_call in calls.text
    assert (await client.get(f"/console/calls/{world.b_call}")).status_code == 200
    business = await client.get("/console/business", params={"tenant": world.b.slug})
    assert business.status_code == 200 and "console-b" in business.text


async def test_bookings_page_shows_the_week(client: httpx.AsyncClient, world: World) -> None:
    async with world.sessions() as session:
        service = Service(tenant_id=world.a.id, name="Beard trim", duration_min=20, price_minor=900)
        staff = Resource(tenant_id=world.a.id, name="Priya")
        session.add_all([service, staff])
        await session.commit()
        service_id, staff_id = service.id, staff.id
    customer = await add_customer(world.sessions, world.a.id, "Robin Banks")
    starts = datetime(2031, 3, 5, 10, 0, tzinfo=UTC)  # a Wednesday
    await add_booking(
        world.sessions,
        world.a.id,
        customer_id=customer,
        service_id=service_id,
        staff_id=staff_id,
        starts_at=starts,
        ends_at=starts + timedelta(minutes=20),
    )
    await _sign_in(client, world.a.key)
    week = await client.get("/console/bookings", params={"day": "2031-03-07", "view": "week"})
    assert week.status_code == 200
    assert "Robin Banks" in week.text and "Priya" in week.text and "Beard trim" in week.text
    other_day = await client.get("/console/bookings", params={"day": "2031-03-07", "view": "day"})
    assert "Robin Banks" not in other_day.text
    await _sign_in(client, world.b.key)
    assert (
        "Robin Banks"
        not in (await client.get("/console/bookings", params={"day": "2031-03-05"})).text
    )


async def test_docs_and_assets_are_served_locally(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', docs.text) + re.findall(
        r"url: '([^']+)'", docs.text
    )
    assert urls and all(u.startswith("/") for u in urls), urls
    for url in urls:
        assert (await client.get(url)).status_code == 200, url
    for name in ["htmx.min.js", "sse.min.js"]:
        asset = await client.get(f"/console/vendor/{name}")
        assert asset.status_code == 200 and len(asset.content) > 1000
    assert (await client.get("/console/vendor/..%2Fpackage.json")).status_code == 404
    assert (await client.get("/console/static/console.css")).status_code == 200
    assert (await client.get("/console/static/base.html")).status_code == 404


async def test_live_stream_shows_live_calls_of_the_tenant_only(
    private_infra: Infra, world: World
) -> None:
    """The SSE stream (cut short by CONSOLE_LIVE_STREAM_S) carries a live call's transcript and
    stage from its Redis log; another tenant's live call and an ended call are never in it."""
    settings = gateway_settings(
        private_infra, console_live_stream_s=1.5, console_live_poll_s=0.1, stream_slot_groups=16
    )
    log = CallLog(connect(private_infra.redis_url), settings.stream_slot_groups)
    mine = await _call(world.sessions, world.a, "stored line", live=True)
    theirs = await _call(world.sessions, world.b, "stored line", live=True)
    for sid, tenant, words in [(mine, world.a, "mine says hello"), (theirs, world.b, "secret")]:
        await log.append(
            CallStarted(call_sid=sid, tenant_id=tenant.id, from_number="+4477", to_number="+4416")
        )
        await log.append(
            TranscriptFinal(
                call_sid=sid, tenant_id=tenant.id, text=words, audio_start_ms=0, audio_end_ms=900
            )
        )
        await log.append(TurnRequested(call_sid=sid, tenant_id=tenant.id, turn_id=1, text=words))
    async with gateway_client(settings) as client:
        await _sign_in(client, world.a.key)
        first = await client.get("/console/live/stream")
        assert first.headers["content-type"].startswith("text/event-stream")
        assert "event: live" in first.text and "mine says hello" in first.text
        assert "turn requested" in first.text
        assert theirs not in first.text and "secret" not in first.text
        await log.append(
            CallEnded(call_sid=mine, tenant_id=world.a.id, reason="caller-hangup", duration_s=3.0)
        )
        after = await client.get("/console/live/stream")
        assert mine not in after.text and "No calls in progress" in after.text
    await log.redis.aclose()
