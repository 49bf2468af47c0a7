"""Tenant isolation of the admin API, against the running gateway: tenant A's key never reads,
lists, changes, deletes or cancels tenant B's objects (a 404 exactly like a nonexistent id),
and B's rows in Postgres are unchanged afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio

from shared.db.base import Base
from shared.db.engine import make_engine, make_sessions
from shared.db.models import (
    Booking,
    Closure,
    KnowledgeItem,
    Message,
    OpeningHours,
    PhoneNumber,
    Resource,
    Service,
    Tenant,
)
from tests.conftest import Platform
from tests.integration.admin_support import (
    Catalog,
    KeyedTenant,
    Sessions,
    detail,
    make_catalog,
    make_tenant,
    performed_services,
    snapshot,
)

pytestmark = pytest.mark.e2e


@dataclass
class World:
    """Two tenants; B owns one of everything."""

    sessions: Sessions
    a: KeyedTenant
    b: KeyedTenant
    b_has: Catalog


@pytest_asyncio.fixture(scope="module")
async def world(platform: Platform) -> AsyncIterator[World]:
    engine = make_engine(platform.infra.database_url)
    sessions = make_sessions(engine)
    a = await make_tenant(sessions, "iso-a")
    b = await make_tenant(sessions, "iso-b")
    b_has = await make_catalog(sessions, b.id)
    await make_catalog(sessions, a.id)  # A has data too, so "not listed" is not "list empty"
    yield World(sessions=sessions, a=a, b=b, b_has=b_has)
    await engine.dispose()


@pytest_asyncio.fixture
async def as_a(platform: Platform, world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=platform.gateway, headers=world.a.headers) as client:
        yield client


@dataclass
class Kind:
    """A resource type with id-addressed routes, how to find B's object, and a valid patch."""

    path: str
    model: type[Base]
    key_column: str
    b_id: str
    patch: dict[str, Any]
    absent_id: str


def kinds(world: World) -> list[Kind]:
    c = world.b_has
    return [
        Kind(
            "/v1/numbers",
            PhoneNumber,
            "e164",
            c.number,
            {"voice": "hijacked"},
            "+15005550999",
        ),
        Kind("/v1/services", Service, "id", c.service_id, {"price_minor": 1}, "f" * 32),
        Kind("/v1/staff", Resource, "id", str(c.staff_id), {"name": "Mallory"}, "987654321"),
        Kind("/v1/hours", OpeningHours, "id", c.business_hours_id, {"weekday": 3}, "f" * 32),
        Kind("/v1/hours", OpeningHours, "id", c.staff_hours_id, {"closes": "15:00"}, "f" * 32),
        Kind("/v1/closures", Closure, "id", c.closure_id, {"reason": "x"}, "f" * 32),
        Kind("/v1/knowledge", KnowledgeItem, "id", c.knowledge_id, {"answer": "No."}, "f" * 32),
    ]


def _key(kind: Kind) -> dict[str, Any]:
    value: Any = int(kind.b_id) if kind.model is Resource else kind.b_id
    return {kind.key_column: value}


def _url(kind: Kind, object_id: str) -> str:
    return f"{kind.path}/{quote(object_id, safe='')}"


async def test_key_a_cannot_read_change_or_delete_b_objects(
    as_a: httpx.AsyncClient, world: World
) -> None:
    for kind in kinds(world):
        before = await snapshot(world.sessions, kind.model, **_key(kind))
        assert before is not None
        absent = [
            await as_a.get(_url(kind, kind.absent_id)),
            await as_a.patch(_url(kind, kind.absent_id), json=kind.patch),
            await as_a.delete(_url(kind, kind.absent_id)),
        ]
        foreign = [
            await as_a.get(_url(kind, kind.b_id)),
            await as_a.patch(_url(kind, kind.b_id), json=kind.patch),
            await as_a.delete(_url(kind, kind.b_id)),
        ]
        for got, nonexistent in zip(foreign, absent, strict=True):
            assert got.status_code == 404, (kind.path, got.text)
            assert got.json() == nonexistent.json(), kind.path  # same answer: no existence leak
        assert await snapshot(world.sessions, kind.model, **_key(kind)) == before, kind.path


async def test_lists_never_include_b_rows(as_a: httpx.AsyncClient, world: World) -> None:
    c = world.b_has
    listed = {
        "/v1/numbers": [row["e164"] for row in (await as_a.get("/v1/numbers")).json()],
        "/v1/services": [row["id"] for row in (await as_a.get("/v1/services")).json()],
        "/v1/staff": [row["id"] for row in (await as_a.get("/v1/staff")).json()],
        "/v1/hours": [row["id"] for row in (await as_a.get("/v1/hours")).json()],
        "/v1/closures": [row["id"] for row in (await as_a.get("/v1/closures")).json()],
        "/v1/knowledge": [row["id"] for row in (await as_a.get("/v1/knowledge")).json()],
        "/v1/bookings": [row["id"] for row in (await as_a.get("/v1/bookings")).json()],
        "/v1/messages": [row["id"] for row in (await as_a.get("/v1/messages")).json()],
    }
    assert all(len(ids) >= 1 for ids in listed.values()), listed  # A's own rows are there
    assert c.number not in listed["/v1/numbers"]
    assert c.service_id not in listed["/v1/services"]
    assert c.staff_id not in listed["/v1/staff"]
    assert not {c.business_hours_id, c.staff_hours_id} & set(listed["/v1/hours"])
    assert c.closure_id not in listed["/v1/closures"]
    assert c.knowledge_id not in listed["/v1/knowledge"]
    assert c.booking_id not in listed["/v1/bookings"]
    assert c.message_id not in listed["/v1/messages"]
    # Filtering by B's staff id finds nothing either.
    for path in ("/v1/hours", "/v1/closures", "/v1/bookings"):
        response = await as_a.get(path, params={"staff_id": c.staff_id})
        assert response.status_code == 200 and response.json() == [], path


async def test_key_a_cannot_read_or_cancel_b_booking(as_a: httpx.AsyncClient, world: World) -> None:
    booking_id = world.b_has.booking_id
    before = await snapshot(world.sessions, Booking, id=booking_id)
    assert before is not None and before["status"] == "confirmed"
    for response in (
        await as_a.get(f"/v1/bookings/{booking_id}"),
        await as_a.post(f"/v1/bookings/{booking_id}/cancel"),
    ):
        assert response.status_code == 404
        assert detail(response) == "booking not found"
    assert await snapshot(world.sessions, Booking, id=booking_id) == before


async def test_key_a_cannot_read_or_mark_b_message(as_a: httpx.AsyncClient, world: World) -> None:
    message_id = world.b_has.message_id
    before = await snapshot(world.sessions, Message, id=message_id)
    assert before is not None and before["read"] is False
    for response in (
        await as_a.get(f"/v1/messages/{message_id}"),
        await as_a.post(f"/v1/messages/{message_id}/read"),
    ):
        assert response.status_code == 404
        assert detail(response) == "message not found"
    assert await snapshot(world.sessions, Message, id=message_id) == before


async def test_tenant_endpoint_is_always_the_keys_own(
    platform: Platform, as_a: httpx.AsyncClient, world: World
) -> None:
    b_before = await snapshot(world.sessions, Tenant, id=world.b.id)
    got = await as_a.get("/v1/tenant")
    assert got.status_code == 200 and got.json()["id"] == world.a.id
    patched = await as_a.patch("/v1/tenant", json={"policies": "A's policy"})
    assert patched.status_code == 200 and patched.json()["id"] == world.a.id
    a_row = await snapshot(world.sessions, Tenant, id=world.a.id)
    assert a_row is not None and a_row["policies"] == "A's policy"
    assert await snapshot(world.sessions, Tenant, id=world.b.id) == b_before
    async with httpx.AsyncClient(base_url=platform.gateway, headers=world.b.headers) as as_b:
        assert (await as_b.get("/v1/tenant")).json()["id"] == world.b.id


async def test_number_owned_by_b_is_a_conflict_that_does_not_say_whose(
    as_a: httpx.AsyncClient, world: World
) -> None:
    number = world.b_has.number
    before = await snapshot(world.sessions, PhoneNumber, e164=number)
    response = await as_a.post("/v1/numbers", json={"e164": number, "pipeline": "cascade"})
    assert response.status_code == 409
    message = detail(response)
    assert "already registered" in message
    for secret in (world.b.id, world.b.slug, "iso-b"):
        assert secret not in message
    assert await snapshot(world.sessions, PhoneNumber, e164=number) == before


async def test_b_staff_and_services_cannot_be_referenced_by_a(
    as_a: httpx.AsyncClient, world: World
) -> None:
    c = world.b_has
    staff = await as_a.post("/v1/staff", json={"name": "Eve", "service_ids": [c.service_id]})
    assert staff.status_code == 400
    assert detail(staff) == f"unknown service id(s): {c.service_id}"
    hours = await as_a.post(
        "/v1/hours",
        json={"staff_id": c.staff_id, "weekday": 2, "opens": "09:00", "closes": "10:00"},
    )
    assert hours.status_code == 400 and detail(hours) == f"unknown staff id {c.staff_id}"
    closure = await as_a.post(
        "/v1/closures",
        json={"staff_id": c.staff_id, "starts_on": "2032-01-01", "ends_on": "2032-01-02"},
    )
    assert closure.status_code == 400 and detail(closure) == f"unknown staff id {c.staff_id}"
    # A's own staff member cannot be linked to B's service either.
    own = (await as_a.get("/v1/staff")).json()[0]
    linked = await as_a.patch(f"/v1/staff/{own['id']}", json={"service_ids": [c.service_id]})
    assert linked.status_code == 400
    assert c.service_id not in await performed_services(world.sessions, own["id"])
    assert await performed_services(world.sessions, c.staff_id) == {c.service_id}
