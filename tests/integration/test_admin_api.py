"""The admin REST API against the running gateway: authentication, CRUD of every resource,
validation and domain errors, and the OpenAPI schema. Rows are checked in Postgres."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import delete

from shared.db.engine import make_engine, make_sessions
from shared.db.models import (
    ApiKey,
    KnowledgeItem,
    PhoneNumber,
    Tenant,
)
from shared.tenancy import api_keys
from tests.conftest import Platform
from tests.integration.admin_support import (
    Ctx,
    Sessions,
    detail,
    make_tenant,
    snapshot,
    unique_e164,
)

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]

ADMIN_PATHS = {
    "/v1/tenant": {"get", "patch"},
    "/v1/numbers": {"get", "post"},
    "/v1/numbers/{e164}": {"get", "patch", "delete"},
    "/v1/services": {"get", "post"},
    "/v1/services/{service_id}": {"get", "patch", "delete"},
    "/v1/staff": {"get", "post"},
    "/v1/staff/{staff_id}": {"get", "patch", "delete"},
    "/v1/hours": {"get", "post"},
    "/v1/hours/{hours_id}": {"get", "patch", "delete"},
    "/v1/closures": {"get", "post"},
    "/v1/closures/{closure_id}": {"get", "patch", "delete"},
    "/v1/knowledge": {"get", "post"},
    "/v1/knowledge/{item_id}": {"get", "patch", "delete"},
    "/v1/bookings": {"get"},
    "/v1/bookings/{booking_id}": {"get"},
    "/v1/bookings/{booking_id}/cancel": {"post"},
    "/v1/messages": {"get"},
    "/v1/messages/{message_id}": {"get"},
    "/v1/messages/{message_id}/read": {"post"},
}
"""Every admin path and its methods (other groups may add more /v1 routes)."""


@pytest_asyncio.fixture(scope="module")
async def sessions(platform: Platform) -> AsyncIterator[Sessions]:
    engine = make_engine(platform.infra.database_url)
    yield make_sessions(engine)
    await engine.dispose()


@pytest_asyncio.fixture
async def ctx(platform: Platform, sessions: Sessions) -> AsyncIterator[Ctx]:
    """A fresh tenant (with key) per test, and a client that sends its key."""
    tenant = await make_tenant(sessions, "api")
    async with httpx.AsyncClient(base_url=platform.gateway, headers=tenant.headers) as api:
        yield Ctx(sessions=sessions, tenant=tenant, api=api)


def test_keys_have_the_documented_shape_and_only_hash_is_compared() -> None:
    key = api_keys.generate()
    assert key.startswith("fd_") and len(key) == 35 and api_keys.looks_like_key(key)
    assert api_keys.generate() != key
    digest = api_keys.hash_key(key)
    assert len(digest) == 64 and api_keys.verify(key, digest)
    assert not api_keys.verify(key + "x", digest)
    assert not api_keys.looks_like_key("fd_short") and not api_keys.looks_like_key("x" * 35)


# --- authentication -----------------------------------------------------------------------


async def test_every_route_needs_a_valid_key(platform: Platform, ctx: Ctx) -> None:
    spec = (await ctx.api.get("/openapi.json")).json()
    unknown = "fd_" + "A" * 32
    attempts = {
        "none": {},
        "wrong scheme": {"Authorization": f"Basic {ctx.tenant.key}"},
        "malformed": {"Authorization": "Bearer not-a-key"},
        "unknown": {"Authorization": f"Bearer {unknown}"},
    }
    async with httpx.AsyncClient(base_url=platform.gateway) as anonymous:
        for path, operations in spec["paths"].items():
            if path not in ADMIN_PATHS:
                continue
            url = path.replace("{e164}", quote("+441632960001", safe="")).replace("{staff_id}", "1")
            url = url.replace("{service_id}", "x").replace("{hours_id}", "x")
            url = url.replace("{closure_id}", "x").replace("{item_id}", "x")
            url = url.replace("{booking_id}", "x").replace("{message_id}", "x")
            for method in operations:
                for label, headers in attempts.items():
                    response = await anonymous.request(method, url, headers=headers)
                    assert response.status_code == 401, (method, url, label, response.text)
                    assert "API key" in detail(response)
                    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_deleted_key_stops_working(platform: Platform, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions, "revoked")
    async with httpx.AsyncClient(base_url=platform.gateway, headers=tenant.headers) as api:
        assert (await api.get("/v1/tenant")).status_code == 200
        async with sessions() as session:
            await session.execute(delete(ApiKey).where(ApiKey.tenant_id == tenant.id))
            await session.commit()
        response = await api.get("/v1/tenant")
    assert response.status_code == 401 and detail(response) == "invalid or revoked API key"


async def _frontdesk(platform: Platform, *args: str) -> tuple[int, str, str]:
    """Run the `frontdesk` CLI against the test database; (exit code, stdout, stderr)."""
    env = dict(os.environ) | {
        "DATABASE_URL": platform.infra.database_url,
        "REDIS_URL": platform.infra.redis_url,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "frontdesk.cli",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_creates_a_key_that_works(platform: Platform, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions, "cli")
    code, out, err = await _frontdesk(
        platform, "apikey", "create", "--tenant", tenant.slug, "--name", "ci"
    )
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    assert api_keys.looks_like_key(key)
    async with httpx.AsyncClient(
        base_url=platform.gateway, headers={"Authorization": f"Bearer {key}"}
    ) as api:
        response = await api.get("/v1/tenant")
    assert response.status_code == 200 and response.json()["id"] == tenant.id
    code, _, err = await _frontdesk(platform, "apikey", "create", "--tenant", "no-such-tenant")
    assert code == 1 and "no tenant with slug 'no-such-tenant'" in err


# --- tenant -------------------------------------------------------------------------------


async def test_tenant_get_and_patch(ctx: Ctx) -> None:
    got = await ctx.api.get("/v1/tenant")
    assert got.status_code == 200
    assert got.json()["slug"] == ctx.tenant.slug and got.json()["timezone"] == "Europe/London"
    change = {
        "name": "Renamed Ltd",
        "address": "1 High St",
        "timezone": "America/New_York",
        "currency": "USD",
        "policies": "24h notice to cancel.",
        "min_notice_min": 120,
        "slot_step_min": 30,
        "horizon_days": 14,
    }
    patched = await ctx.api.patch("/v1/tenant", json=change)
    assert patched.status_code == 200, patched.text
    assert {k: patched.json()[k] for k in change} == change
    row = await snapshot(ctx.sessions, Tenant, id=ctx.tenant.id)
    assert row is not None and {k: row[k] for k in change} == change
    assert row["slug"] == ctx.tenant.slug


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone 'Mars/Olympus_Mons'"),
        ({"timezone": "Europe"}, "unknown time zone 'Europe'"),
        ({"currency": "pounds"}, "should match pattern"),
        ({"name": None}, "name cannot be null"),
        ({"slot_step_min": 0}, "greater than or equal to 5"),
        ({"slug": "stolen"}, "Extra inputs are not permitted"),
    ],
)
async def test_tenant_patch_rejects_bad_values(
    ctx: Ctx, body: dict[str, object], message: str
) -> None:
    before = await snapshot(ctx.sessions, Tenant, id=ctx.tenant.id)
    response = await ctx.api.patch("/v1/tenant", json=body)
    assert response.status_code == 422
    assert message in detail(response)
    assert await snapshot(ctx.sessions, Tenant, id=ctx.tenant.id) == before


# --- numbers ------------------------------------------------------------------------------


async def test_numbers_crud(ctx: Ctx) -> None:
    number = unique_e164()
    url = f"/v1/numbers/{quote(number, safe='')}"
    created = await ctx.api.post(
        "/v1/numbers",
        json={
            "e164": number,
            "pipeline": "cascade",
            "voice": "aura-2",
            "transfer_number": "+441632960999",
        },
    )
    assert created.status_code == 201, created.text
    assert created.json() == {
        "e164": number,
        "pipeline": "cascade",
        "voice": "aura-2",
        "transfer_number": "+441632960999",
    }
    assert [row["e164"] for row in (await ctx.api.get("/v1/numbers")).json()] == [number]
    assert (await ctx.api.get(url)).json()["voice"] == "aura-2"
    patched = await ctx.api.patch(url, json={"pipeline": "deepgram-agent", "transfer_number": None})
    assert patched.status_code == 200
    row = await snapshot(ctx.sessions, PhoneNumber, e164=number)
    assert row is not None and row["tenant_id"] == ctx.tenant.id
    assert (row["pipeline"], row["voice"], row["transfer_number"]) == (
        "deepgram-agent",
        "aura-2",
        None,
    )
    duplicate = await ctx.api.post("/v1/numbers", json={"e164": number})
    assert duplicate.status_code == 409
    assert detail(duplicate) == f"phone number {number} is already registered"
    assert (await ctx.api.delete(url)).status_code == 204
    assert await snapshot(ctx.sessions, PhoneNumber, e164=number) is None
    gone = await ctx.api.get(url)
    assert gone.status_code == 404 and detail(gone) == "phone number not found"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"e164": "07700900123"}, "should match pattern"),
        ({"e164": "+44 7700 900123"}, "should match pattern"),
        ({"e164": "+0441632960001"}, "should match pattern"),
        ({"e164": "+441632960123", "pipeline": "telepathy"}, "cascade"),
        ({"e164": "+441632960123", "transfer_number": "dial 0"}, "should match pattern"),
    ],
)
async def test_numbers_validation(ctx: Ctx, body: dict[str, object], message: str) -> None:
    response = await ctx.api.post("/v1/numbers", json=body)
    assert response.status_code == 422
    assert message in detail(response)
    assert (await ctx.api.get("/v1/numbers")).json() == []


# --- knowledge ----------------------------------------------------------------------------


async def test_knowledge_crud(ctx: Ctx) -> None:
    created = await ctx.api.post(
        "/v1/knowledge", json={"question": "  Parking? ", "answer": "Behind the shop."}
    )
    assert created.status_code == 201
    item = created.json()
    assert item["question"] == "Parking?"  # stripped
    url = f"/v1/knowledge/{item['id']}"
    assert (await ctx.api.get(url)).json() == item
    assert (await ctx.api.patch(url, json={"answer": "Free, round the back."})).status_code == 200
    row = await snapshot(ctx.sessions, KnowledgeItem, id=item["id"])
    assert row is not None and row["answer"] == "Free, round the back."
    assert [k["id"] for k in (await ctx.api.get("/v1/knowledge")).json()] == [item["id"]]
    empty = await ctx.api.post("/v1/knowledge", json={"question": "Hi?", "answer": ""})
    assert empty.status_code == 422
    nul = await ctx.api.patch(url, json={"answer": "a\u0000b"})
    assert nul.status_code == 422 and "NUL" in detail(nul)
    assert (await ctx.api.delete(url)).status_code == 204
    assert await snapshot(ctx.sessions, KnowledgeItem, id=item["id"]) is None
    malformed = await ctx.api.get("/v1/knowledge/not an id")
    assert malformed.status_code == 422


# --- OpenAPI ------------------------------------------------------------------------------


async def test_openapi_lists_every_path_with_bearer_security(ctx: Ctx) -> None:
    spec = (await ctx.api.get("/openapi.json")).json()
    listed = {path: set(ops) for path, ops in spec["paths"].items() if path in ADMIN_PATHS}
    assert listed == ADMIN_PATHS
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "fd_<32 url-safe characters>",
        "description": "A tenant's admin API key (`frontdesk apikey create --tenant SLUG`).",
    }
    for path in ADMIN_PATHS:
        for method, operation in spec["paths"][path].items():
            assert operation["security"] == [{"ApiKey": []}], (method, path)
            assert operation["tags"] and operation["summary"], (method, path)
            assert "401" in operation["responses"], (method, path)
    number_fields = spec["components"]["schemas"]["NumberIn"]["properties"]
    assert all(field.get("description") for field in number_fields.values())
    docs = await ctx.api.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
