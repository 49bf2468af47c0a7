"""Admin API keys: the operator API and `frontdesk apikey list|revoke`; a revoked key gets a
401 on its very next request; `last_used_at` is written at most once per interval."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.engine import make_engine, make_sessions
from shared.db.models import ApiKey
from tests.conftest import ROOT, Infra
from tests.integration.admin_support import make_tenant
from tests.integration.gateway_inprocess import gateway_client, gateway_settings

OPERATOR = "operator-key-for-tests-0123456789"
AS_OPERATOR = {"Authorization": f"Bearer {OPERATOR}"}


@pytest_asyncio.fixture
async def sessions(private_infra: Infra) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(private_infra.database_url)
    yield make_sessions(engine)
    await engine.dispose()


async def _last_used(sessions: async_sessionmaker[AsyncSession], key_id: str) -> object:
    async with sessions() as session:
        return await session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == key_id))


async def test_operator_creates_lists_and_revokes_and_revocation_is_immediate(
    private_infra: Infra, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tenant = await make_tenant(sessions, "keys")
    settings = gateway_settings(private_infra, operator_api_key=OPERATOR, api_key_touch_s=3600)
    async with gateway_client(settings) as client:
        created = await client.post(
            "/v1/operator/api-keys", json={"tenant": tenant.slug, "name": "ci"}, headers=AS_OPERATOR
        )
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        as_tenant = {"Authorization": f"Bearer {key}"}
        assert (await client.get("/v1/tenant", headers=as_tenant)).status_code == 200

        listed = await client.get(
            "/v1/operator/api-keys", params={"tenant": tenant.slug}, headers=AS_OPERATOR
        )
        rows = {row["name"]: row for row in listed.json()}
        assert set(rows) == {"test", "ci"} and "key" not in rows["ci"]
        assert rows["ci"]["last_used_at"] is not None and rows["ci"]["revoked_at"] is None
        first_use = await _last_used(sessions, rows["ci"]["id"])
        assert (await client.get("/v1/tenant", headers=as_tenant)).status_code == 200
        assert await _last_used(sessions, rows["ci"]["id"]) == first_use  # throttled

        revoked = await client.delete(
            f"/v1/operator/api-keys/{rows['ci']['id']}", headers=AS_OPERATOR
        )
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        after = await client.get("/v1/tenant", headers=as_tenant)
        assert after.status_code == 401 and "revoked" in after.json()["detail"]
        assert (await client.get("/v1/tenant", headers=tenant.headers)).status_code == 200
        again = await client.delete(
            f"/v1/operator/api-keys/{rows['ci']['id']}", headers=AS_OPERATOR
        )
        assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
        missing = await client.delete("/v1/operator/api-keys/nosuchkey", headers=AS_OPERATOR)
        assert missing.status_code == 404
        unknown = await client.post(
            "/v1/operator/api-keys", json={"tenant": "no-such-tenant"}, headers=AS_OPERATOR
        )
        assert unknown.status_code == 422


async def test_operator_api_needs_the_operator_key(
    private_infra: Infra, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tenant = await make_tenant(sessions, "keys")
    async with gateway_client(gateway_settings(private_infra, operator_api_key=OPERATOR)) as c:
        assert (await c.get("/v1/operator/api-keys")).status_code == 401
        wrong = {"Authorization": "Bearer operator-key-for-tests-0123456780"}
        assert (await c.get("/v1/operator/api-keys", headers=wrong)).status_code == 401
        assert (await c.get("/v1/operator/api-keys", headers=tenant.headers)).status_code == 401
    async with gateway_client(gateway_settings(private_infra, operator_api_key="")) as c:
        disabled = await c.get("/v1/operator/api-keys", headers={"Authorization": "Bearer "})
        assert disabled.status_code == 401


async def test_cli_lists_and_revokes(
    private_infra: Infra, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tenant = await make_tenant(sessions, "cli")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "REDIS_URL": private_infra.redis_url,
        "DATABASE_URL": private_infra.database_url,
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "frontdesk.cli", "apikey", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    listed = cli("list", "--tenant", tenant.slug)
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    key_id = line.split("\t")[0]
    assert tenant.slug in line and line.endswith("active") and tenant.key not in line
    revoked = cli("revoke", key_id)
    assert revoked.returncode == 0 and f"revoked {key_id}" in revoked.stdout
    assert "revoked 2" in cli("list", "--tenant", tenant.slug).stdout
    assert cli("revoke", "nosuchkey").returncode == 1
    async with gateway_client(gateway_settings(private_infra)) as client:
        assert (await client.get("/v1/tenant", headers=tenant.headers)).status_code == 401
