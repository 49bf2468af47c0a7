"""Webhook URLs that reach inside are refused when they are created (422) and again when a
delivery is attempted (dead-lettered at once, nothing sent); a failed delivery keeps the
status code and a short reason, never the receiver's body. Services refuse default secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.recorder.webhooks.delivery import Deliverer, RetryPolicy
from shared.db.engine import make_engine, make_sessions
from shared.runtime.guarded_http import guarded_client
from shared.runtime.outbound_guard import UrlPolicy
from tests.conftest import ROOT, Infra
from tests.integration.admin_support import make_tenant
from tests.integration.gateway_inprocess import gateway_client, gateway_settings
from tests.integration.test_webhooks import _deliver_until, _queue_event, receiver

INSIDE = [
    "http://127.0.0.1:9/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::1]/hook",
    "http://localhost/hook",
    "http://10.0.0.8/hook",
    "http://100.64.1.1/hook",
    "http://[fd00:ec2::254]/",
]


@pytest_asyncio.fixture
async def sessions(private_infra: Infra) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(private_infra.database_url)
    yield make_sessions(engine)
    await engine.dispose()


@pytest.mark.parametrize("url", INSIDE)
async def test_creating_an_endpoint_inside_is_a_422(
    private_infra: Infra, sessions: async_sessionmaker[AsyncSession], url: str
) -> None:
    tenant = await make_tenant(sessions, "ssrf")
    settings = gateway_settings(private_infra, outbound_allow="")
    async with gateway_client(settings) as client:
        created = await client.post("/v1/webhooks", json={"url": url}, headers=tenant.headers)
        assert created.status_code == 422, created.text
        assert "refused" in created.json()["detail"][0]["msg"]
        listed = await client.get("/v1/webhooks", headers=tenant.headers)
    assert listed.json() == []


async def test_changing_an_endpoint_to_inside_is_a_422(
    private_infra: Infra, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tenant = await make_tenant(sessions, "ssrf")
    async with gateway_client(gateway_settings(private_infra, outbound_allow="")) as client:
        created = await client.post(
            "/v1/webhooks", json={"url": "http://93.184.216.34/hook"}, headers=tenant.headers
        )
        assert created.status_code == 201, created.text
        endpoint = created.json()["id"]
        changed = await client.patch(
            f"/v1/webhooks/{endpoint}",
            json={"url": "http://169.254.169.254/"},
            headers=tenant.headers,
        )
        assert changed.status_code == 422
        listed = await client.get("/v1/webhooks", headers=tenant.headers)
    assert listed.json()[0]["url"] == "http://93.184.216.34/hook"


async def test_delivery_to_an_address_inside_is_refused_and_dead_lettered(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The row got in anyway (an older version, SQL, a DNS answer that changed since): the
    deliverer checks again at connect time and sends nothing."""
    policy = RetryPolicy(base_s=0.01, max_s=0.05, max_attempts=5)
    async with receiver(failures=0) as hook, guarded_client(UrlPolicy()) as http:
        deliverer = Deliverer(sessions, http, policy, timeout_s=2, poll_s=0.05)
        loopback = await _queue_event(sessions, hook.url)
        metadata = await _queue_event(sessions, "http://169.254.169.254/latest/meta-data/")
        first = await _deliver_until(deliverer, sessions, loopback, "failed")
        second = await _deliver_until(deliverer, sessions, metadata, "failed")
        assert hook.received == []
    assert first.attempts == 1 and first.response_code is None  # dead at once, not retried
    assert first.last_error == "refused: host resolves to a loopback address"
    assert second.last_error == "refused: host resolves to a cloud metadata address"


async def test_allowed_loopback_is_delivered_through_the_checked_address(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    policy = RetryPolicy(base_s=0.01, max_s=0.05, max_attempts=2)
    async with receiver(failures=0) as hook, guarded_client(UrlPolicy.parse("127.0.0.0/8")) as h:
        deliverer = Deliverer(sessions, h, policy, timeout_s=2, poll_s=0.05)
        url = hook.url.replace("127.0.0.1", "localhost")
        event = await _queue_event(sessions, url)
        delivered = await _deliver_until(deliverer, sessions, event, "delivered")
        ((headers, _),) = hook.received
    assert delivered.response_code == 200
    assert headers["host"] == url.split("/")[2]  # the name, though the socket went to the IP


async def test_a_failed_delivery_stores_no_response_body(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    policy = RetryPolicy(base_s=0.01, max_s=0.05, max_attempts=1)
    async with receiver(failures=5) as hook, httpx.AsyncClient() as http:
        deliverer = Deliverer(sessions, http, policy, timeout_s=2, poll_s=0.05)
        event = await _queue_event(sessions, hook.url)
        failed = await _deliver_until(deliverer, sessions, event, "failed")
    assert failed.last_error == "HTTP 500 Internal Server Error"  # not the receiver's "boom"


def test_a_service_refuses_to_start_with_default_secrets(private_infra: Infra) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "REDIS_URL": private_infra.redis_url,
        "DATABASE_URL": private_infra.database_url,
        "LOG_JSON": "false",
        "GATEWAY_PORT": "1",  # never reached: it must exit before binding
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.gateway"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "TWILIO_AUTH_TOKEN is a published default" in done.stderr
    assert "STREAM_TOKEN_SECRET is a published default" in done.stderr
