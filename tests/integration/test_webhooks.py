"""Webhook deliveries against a real HTTP receiver: signed, retried with backoff, logged,
dead-lettered after the last attempt, and delivered by whichever deliverer runs next."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest_asyncio
import uvicorn
from fastapi import FastAPI, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.recorder.webhooks.delivery import Deliverer, RetryPolicy, enqueue
from services.recorder.webhooks.signing import event_id_for
from shared.db.engine import make_engine, make_sessions
from shared.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.conftest import Infra
from tests.integration.test_recorder_persistence import make_tenant

SECRET = "whsec_test-secret"
FAST = RetryPolicy(base_s=0.05, max_s=0.2, max_attempts=5)


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance_s: int = 300) -> bool:
    """The receiver's check, as in docs/webhooks.md."""
    timestamp = headers["x-frontdesk-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(headers["x-frontdesk-signature"], "v1=" + expected.hexdigest())


@dataclass
class Receiver:
    """What a real HTTP receiver got; it answers 500 to the first `failures` requests."""

    failures: int
    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@asynccontextmanager
async def receiver(failures: int) -> AsyncIterator[Receiver]:
    """A uvicorn server on a free port, running in this event loop."""
    state = Receiver(failures=failures)
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        state.received.append((dict(request.headers), await request.body()))
        failed = len(state.received) <= state.failures
        return Response("boom" if failed else "ok", status_code=500 if failed else 200)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "receiver did not start"
        await asyncio.sleep(0.01)
    state.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield state
    finally:
        server.should_exit = True
        await task


@pytest_asyncio.fixture
async def sessions(private_infra: Infra) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A database no running recorder polls, so this test's deliverer is the only one."""
    engine = make_engine(private_infra.database_url)
    yield make_sessions(engine)
    await engine.dispose()


async def _queue_event(sessions: async_sessionmaker[AsyncSession], url: str) -> str:
    """A tenant with one endpoint at `url` and one queued event; returns the event id."""
    tenant_id = await make_tenant(sessions)
    event_id = event_id_for(f"CA{uuid.uuid4().hex}", "call.completed")
    async with sessions() as session:
        session.add(WebhookEndpoint(tenant_id=tenant_id, url=url, secret=SECRET))
        await session.flush()
        queued = await enqueue(
            session, tenant_id, event_id, "call.completed", None, {"event_id": event_id, "n": 1}
        )
        await session.commit()
    assert queued == 1
    return event_id


async def _delivery(sessions: async_sessionmaker[AsyncSession], event_id: str) -> WebhookDelivery:
    async with sessions() as session:
        return (
            await session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.event_id == event_id)
            )
        ).one()


async def _deliver_until(
    deliverer: Deliverer,
    sessions: async_sessionmaker[AsyncSession],
    event_id: str,
    status: str,
) -> WebhookDelivery:
    deadline = time.monotonic() + 20
    while (delivery := await _delivery(sessions, event_id)).status != status:
        assert time.monotonic() < deadline, f"delivery stuck in {delivery.status}"
        await deliverer.deliver_due()
        await asyncio.sleep(0.02)
    return delivery


async def test_a_receiver_failing_twice_gets_the_event_a_third_time(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with receiver(failures=2) as hook, httpx.AsyncClient() as http:
        event_id = await _queue_event(sessions, hook.url)
        deliverer = Deliverer(sessions, http, FAST, timeout_s=5, poll_s=0.05, rng=random.Random(7))
        delivery = await _deliver_until(deliverer, sessions, event_id, "delivered")
        received = list(hook.received)
    async with sessions() as session:
        attempts = (
            await session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == delivery.id)
                .order_by(WebhookAttempt.attempt)
            )
        ).all()

    assert len(received) == 3
    assert {h["x-frontdesk-event-id"] for h, _ in received} == {event_id}
    assert all(verify(SECRET, h, body) for h, body in received)
    assert not verify("whsec_other", *received[0])
    assert json.loads(received[2][1]) == {"event_id": event_id, "n": 1}
    assert [(a.attempt, a.response_code) for a in attempts] == [(1, 500), (2, 500), (3, 200)]
    assert attempts[0].error is not None and "HTTP 500" in attempts[0].error
    assert attempts[2].error is None
    # backoff: the second retry waited at least half of base x 2 (jitter is 0.5..1)
    gap = (attempts[2].at - attempts[1].at).total_seconds()
    assert gap >= FAST.base_s * 2 * 0.5
    assert (delivery.attempts, delivery.response_code, delivery.last_error) == (3, 200, None)
    assert delivery.delivered_at is not None


async def test_after_the_last_attempt_a_delivery_is_dead_lettered(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    policy = RetryPolicy(base_s=0.01, max_s=0.05, max_attempts=3)
    async with receiver(failures=100) as hook, httpx.AsyncClient() as http:
        event_id = await _queue_event(sessions, hook.url)
        deliverer = Deliverer(sessions, http, policy, timeout_s=5, poll_s=0.05)
        delivery = await _deliver_until(deliverer, sessions, event_id, "failed")
        assert await deliverer.deliver_due() == 0  # a dead letter is not retried by itself
        assert len(hook.received) == 3
    assert delivery.attempts == 3 and delivery.response_code == 500
    assert delivery.last_error is not None and delivery.last_error.startswith("HTTP 500")


async def test_an_unreachable_receiver_is_retried_and_logged(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    policy = RetryPolicy(base_s=0.01, max_s=0.05, max_attempts=2)
    async with httpx.AsyncClient() as http:
        event_id = await _queue_event(sessions, url)
        deliverer = Deliverer(sessions, http, policy, timeout_s=2, poll_s=0.05)
        delivery = await _deliver_until(deliverer, sessions, event_id, "failed")
    assert delivery.response_code is None
    assert delivery.last_error is not None and "ConnectError" in delivery.last_error


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(base_s=2.0, max_s=30.0, max_attempts=10)
    rng = random.Random(1)
    for attempts, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 30.0), (9, 30.0)]:
        delays = [policy.delay_s(attempts, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (attempts, delays)
