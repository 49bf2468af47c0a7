"""The admin API's catalog (services, staff, hours, closures) and activity (bookings,
messages) against the running gateway: CRUD, validation and domain errors, rows checked in
Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
import pytest_asyncio

from shared.db.engine import make_engine, make_sessions
from shared.db.models import Booking, Closure, Message, OpeningHours, Resource, Service
from tests.conftest import Platform
from tests.integration.admin_support import (
    Ctx,
    Sessions,
    add_booking,
    add_customer,
    add_message,
    detail,
    make_tenant,
    performed_services,
    snapshot,
)

pytestmark = pytest.mark.e2e


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


# --- services and staff -------------------------------------------------------------------


async def test_services_crud_and_conflicts(ctx: Ctx) -> None:
    created = await ctx.api.post(
        "/v1/services", json={"name": "Skin fade", "duration_min": 45, "price_minor": 2800}
    )
    assert created.status_code == 201, created.text
    service = created.json()
    assert service["currency"] == "GBP"  # the tenant's
    assert (service["buffer_min"], service["description"]) == (0, "")
    url = f"/v1/services/{service['id']}"
    assert (await ctx.api.get(url)).json() == service
    other = await ctx.api.post(
        "/v1/services",
        json={"name": "Beard trim", "duration_min": 15, "price_minor": 1200, "currency": "EUR"},
    )
    assert other.status_code == 201 and other.json()["currency"] == "EUR"
    names = [row["name"] for row in (await ctx.api.get("/v1/services")).json()]
    assert names == ["Beard trim", "Skin fade"]
    duplicate = await ctx.api.post(
        "/v1/services", json={"name": "Skin fade", "duration_min": 5, "price_minor": 1}
    )
    assert (
        duplicate.status_code == 409
        and detail(duplicate) == "a service named 'Skin fade' already exists"
    )
    renamed_onto = await ctx.api.patch(url, json={"name": "Beard trim"})
    assert renamed_onto.status_code == 409
    patched = await ctx.api.patch(url, json={"price_minor": 3000, "buffer_min": 10})
    assert patched.status_code == 200 and patched.json()["price_minor"] == 3000
    row = await snapshot(ctx.sessions, Service, id=service["id"])
    assert row is not None and (row["name"], row["price_minor"], row["buffer_min"]) == (
        "Skin fade",
        3000,
        10,
    )
    assert (await ctx.api.delete(f"/v1/services/{other.json()['id']}")).status_code == 204
    assert await snapshot(ctx.sessions, Service, id=other.json()["id"]) is None
    too_dear = await ctx.api.patch(url, json={"price_minor": 2**31})
    assert too_dear.status_code == 422 and "less than or equal to 2147483647" in detail(too_dear)
    bad = await ctx.api.post(
        "/v1/services", json={"name": "", "duration_min": 0, "price_minor": -1}
    )
    assert bad.status_code == 422
    assert {tuple(error["loc"]) for error in bad.json()["detail"]} == {
        ("body", "name"),
        ("body", "duration_min"),
        ("body", "price_minor"),
    }


async def test_staff_crud_with_services(ctx: Ctx) -> None:
    cut = (
        await ctx.api.post(
            "/v1/services", json={"name": "Cut", "duration_min": 30, "price_minor": 2000}
        )
    ).json()
    shave = (
        await ctx.api.post(
            "/v1/services", json={"name": "Shave", "duration_min": 20, "price_minor": 1500}
        )
    ).json()
    created = await ctx.api.post(
        "/v1/staff", json={"name": "Dave", "service_ids": [shave["id"], cut["id"], cut["id"]]}
    )
    assert created.status_code == 201, created.text
    staff = created.json()
    assert staff["service_ids"] == sorted([cut["id"], shave["id"]])
    assert (staff["kind"], staff["capacity"], staff["active"]) == ("staff", 1, True)
    assert await performed_services(ctx.sessions, staff["id"]) == {cut["id"], shave["id"]}
    url = f"/v1/staff/{staff['id']}"
    assert (await ctx.api.get(url)).json() == staff
    patched = await ctx.api.patch(url, json={"service_ids": [cut["id"]], "active": False})
    assert patched.status_code == 200
    assert patched.json()["service_ids"] == [cut["id"]] and patched.json()["active"] is False
    assert await performed_services(ctx.sessions, staff["id"]) == {cut["id"]}
    unchanged = await ctx.api.patch(url, json={"capacity": 2})
    assert unchanged.json()["service_ids"] == [cut["id"]]  # not sent: the set stays
    unknown = await ctx.api.post("/v1/staff", json={"name": "Ghost", "service_ids": ["nope"]})
    assert unknown.status_code == 400 and detail(unknown) == "unknown service id(s): nope"
    assert [s["name"] for s in (await ctx.api.get("/v1/staff")).json()] == ["Dave"]
    duplicate = await ctx.api.post("/v1/staff", json={"name": "Dave"})
    assert duplicate.status_code == 409
    # Deleting a service unlinks it from staff.
    assert (await ctx.api.delete(f"/v1/services/{cut['id']}")).status_code == 204
    assert (await ctx.api.get(url)).json()["service_ids"] == []
    assert (await ctx.api.delete(url)).status_code == 204
    assert await snapshot(ctx.sessions, Resource, id=staff["id"]) is None
    assert (await ctx.api.get(url)).status_code == 404


async def test_booked_service_and_staff_cannot_be_deleted(ctx: Ctx) -> None:
    service = (
        await ctx.api.post(
            "/v1/services", json={"name": "Cut", "duration_min": 30, "price_minor": 2000}
        )
    ).json()
    staff = (
        await ctx.api.post("/v1/staff", json={"name": "Dave", "service_ids": [service["id"]]})
    ).json()
    customer_id = await add_customer(ctx.sessions, ctx.tenant.id, "Jo Bloggs")
    await add_booking(
        ctx.sessions,
        ctx.tenant.id,
        customer_id=customer_id,
        service_id=service["id"],
        staff_id=staff["id"],
        starts_at=datetime.fromisoformat("2031-01-06T10:00:00+00:00"),
        ends_at=datetime.fromisoformat("2031-01-06T10:30:00+00:00"),
    )
    refused = await ctx.api.delete(f"/v1/services/{service['id']}")
    assert refused.status_code == 409
    assert detail(refused) == "service 'Cut' has bookings and cannot be deleted"
    refused = await ctx.api.delete(f"/v1/staff/{staff['id']}")
    assert refused.status_code == 409 and "set active to false" in detail(refused)
    assert await snapshot(ctx.sessions, Service, id=service["id"]) is not None
    assert await snapshot(ctx.sessions, Resource, id=staff["id"]) is not None


# --- hours and closures -------------------------------------------------------------------


async def test_hours_crud_business_and_staff(ctx: Ctx) -> None:
    staff = (await ctx.api.post("/v1/staff", json={"name": "Dave"})).json()
    business = await ctx.api.post(
        "/v1/hours", json={"weekday": 0, "opens": "09:00", "closes": "17:30"}
    )
    assert business.status_code == 201, business.text
    assert business.json()["staff_id"] is None and business.json()["opens"] == "09:00:00"
    own = await ctx.api.post(
        "/v1/hours",
        json={"staff_id": staff["id"], "weekday": 0, "opens": "12:00", "closes": "18:00"},
    )
    assert own.status_code == 201  # a staff interval may overlap the business's
    listed = (await ctx.api.get("/v1/hours")).json()
    assert [row["id"] for row in listed] == [business.json()["id"], own.json()["id"]]
    only_staff = (await ctx.api.get("/v1/hours", params={"staff_id": staff["id"]})).json()
    assert [row["id"] for row in only_staff] == [own.json()["id"]]
    overlap = await ctx.api.post(
        "/v1/hours", json={"weekday": 0, "opens": "17:00", "closes": "19:00"}
    )
    assert overlap.status_code == 409 and "overlaps opening hours" in detail(overlap)
    touching = await ctx.api.post(
        "/v1/hours", json={"weekday": 0, "opens": "17:30", "closes": "19:00"}
    )
    assert touching.status_code == 201
    url = f"/v1/hours/{business.json()['id']}"
    patched = await ctx.api.patch(url, json={"weekday": 5, "closes": "13:00"})
    assert patched.status_code == 200
    row = await snapshot(ctx.sessions, OpeningHours, id=business.json()["id"])
    assert row is not None and (row["weekday"], row["closes"].isoformat()) == (5, "13:00:00")
    assert (await ctx.api.delete(url)).status_code == 204
    assert await snapshot(ctx.sessions, OpeningHours, id=business.json()["id"]) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"weekday": 1, "opens": "17:00", "closes": "09:00"},
            "opens (17:00) must be before closes (09:00)",
        ),
        ({"weekday": 1, "opens": "09:00", "closes": "09:00"}, "must be before closes"),
        ({"weekday": 7, "opens": "09:00", "closes": "17:00"}, "less than or equal to 6"),
        ({"weekday": 1, "opens": "9am", "closes": "17:00"}, "valid time"),
        ({"weekday": 1, "opens": "09:00+01:00", "closes": "17:00"}, "without an offset"),
    ],
)
async def test_hours_validation(ctx: Ctx, body: dict[str, object], message: str) -> None:
    response = await ctx.api.post("/v1/hours", json=body)
    assert response.status_code == 422
    assert message in detail(response)
    assert (await ctx.api.get("/v1/hours")).json() == []


async def test_hours_patch_that_would_close_before_opening_is_refused(ctx: Ctx) -> None:
    hours = (
        await ctx.api.post("/v1/hours", json={"weekday": 2, "opens": "09:00", "closes": "12:00"})
    ).json()
    response = await ctx.api.patch(f"/v1/hours/{hours['id']}", json={"opens": "12:30"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "opens"]
    assert "must be before closes (12:00)" in detail(response)
    row = await snapshot(ctx.sessions, OpeningHours, id=hours["id"])
    assert row is not None and row["opens"].isoformat() == "09:00:00"


async def test_closures_crud_and_validation(ctx: Ctx) -> None:
    created = await ctx.api.post(
        "/v1/closures",
        json={"starts_on": "2031-12-24", "ends_on": "2031-12-26", "reason": "Christmas"},
    )
    assert created.status_code == 201, created.text
    closure = created.json()
    assert closure["staff_id"] is None and closure["reason"] == "Christmas"
    url = f"/v1/closures/{closure['id']}"
    assert (await ctx.api.get(url)).json() == closure
    assert [c["id"] for c in (await ctx.api.get("/v1/closures")).json()] == [closure["id"]]
    patched = await ctx.api.patch(url, json={"ends_on": "2031-12-27"})
    assert patched.status_code == 200
    row = await snapshot(ctx.sessions, Closure, id=closure["id"])
    assert row is not None and row["ends_on"].isoformat() == "2031-12-27"
    backwards = await ctx.api.patch(url, json={"ends_on": "2031-12-01"})
    assert backwards.status_code == 422 and "must not be after ends_on" in detail(backwards)
    bad = await ctx.api.post(
        "/v1/closures", json={"starts_on": "2031-05-02", "ends_on": "2031-05-01"}
    )
    assert bad.status_code == 422 and "must not be after ends_on" in detail(bad)
    assert (await ctx.api.delete(url)).status_code == 204
    assert await snapshot(ctx.sessions, Closure, id=closure["id"]) is None


# --- bookings and messages ----------------------------------------------------------------


async def test_bookings_list_filter_get_cancel(ctx: Ctx) -> None:
    service = (
        await ctx.api.post(
            "/v1/services", json={"name": "Cut", "duration_min": 30, "price_minor": 2000}
        )
    ).json()
    staff = (await ctx.api.post("/v1/staff", json={"name": "Dave"})).json()
    customer_id = await add_customer(ctx.sessions, ctx.tenant.id, "Jo Bloggs")

    async def book(start: str, end: str, status: str = "confirmed") -> str:
        return await add_booking(
            ctx.sessions,
            ctx.tenant.id,
            customer_id=customer_id,
            service_id=service["id"],
            staff_id=staff["id"],
            starts_at=datetime.fromisoformat(start),
            ends_at=datetime.fromisoformat(end),
            status=status,
        )

    # Tenant is Europe/London (BST = UTC+1 in July): 23:30 UTC on the 1st is the 2nd locally.
    late = await book("2031-07-01T23:30:00+00:00", "2031-07-02T00:00:00+00:00")
    morning = await book("2031-07-02T09:00:00+01:00", "2031-07-02T09:30:00+01:00")
    cancelled = await book("2031-07-03T09:00:00+01:00", "2031-07-03T09:30:00+01:00", "cancelled")

    every = (await ctx.api.get("/v1/bookings")).json()
    assert [b["id"] for b in every] == [late, morning, cancelled]
    first = every[0]
    assert first["customer"] == {
        "id": customer_id,
        "phone": first["customer"]["phone"],
        "name": "Jo Bloggs",
    }
    assert (first["service_name"], first["staff_id"], first["staff_name"]) == (
        "Cut",
        staff["id"],
        "Dave",
    )
    on_2nd = await ctx.api.get(
        "/v1/bookings", params={"date_from": "2031-07-02", "date_to": "2031-07-02"}
    )
    assert [b["id"] for b in on_2nd.json()] == [late, morning]
    from_3rd = await ctx.api.get("/v1/bookings", params={"date_from": "2031-07-03"})
    assert [b["id"] for b in from_3rd.json()] == [cancelled]
    confirmed = await ctx.api.get("/v1/bookings", params={"status": "confirmed"})
    assert [b["id"] for b in confirmed.json()] == [late, morning]
    page = await ctx.api.get("/v1/bookings", params={"limit": 1, "offset": 1})
    assert [b["id"] for b in page.json()] == [morning]
    reversed_range = await ctx.api.get(
        "/v1/bookings", params={"date_from": "2031-07-03", "date_to": "2031-07-01"}
    )
    assert reversed_range.status_code == 422 and "date_to must not be before date_from" in detail(
        reversed_range
    )
    assert (await ctx.api.get("/v1/bookings", params={"date_from": "July"})).status_code == 422
    assert (await ctx.api.get("/v1/bookings", params={"offset": 2**70})).status_code == 422

    got = await ctx.api.get(f"/v1/bookings/{morning}")
    assert got.status_code == 200 and got.json()["starts_at"].startswith("2031-07-02T08:00:00")
    cancel = await ctx.api.post(f"/v1/bookings/{morning}/cancel")
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    row = await snapshot(ctx.sessions, Booking, id=morning)
    assert row is not None and row["status"] == "cancelled"
    again = await ctx.api.post(f"/v1/bookings/{morning}/cancel")
    assert again.status_code == 409 and "this one is cancelled" in detail(again)
    # The freed slot can be booked again (the no-overlap constraint only covers confirmed).
    await book("2031-07-02T09:00:00+01:00", "2031-07-02T09:30:00+01:00")
    missing = await ctx.api.get("/v1/bookings/" + "0" * 32)
    assert missing.status_code == 404 and detail(missing) == "booking not found"


async def test_messages_list_filter_and_mark_read(ctx: Ctx) -> None:
    first = await add_message(ctx.sessions, ctx.tenant.id, "Call me about Friday")
    second = await add_message(ctx.sessions, ctx.tenant.id, "Running late", read=True)
    listed = (await ctx.api.get("/v1/messages")).json()
    assert [m["id"] for m in listed] == [second, first]  # newest first
    assert listed[1]["body"] == "Call me about Friday" and listed[1]["read"] is False
    unread = (await ctx.api.get("/v1/messages", params={"read": "false"})).json()
    assert [m["id"] for m in unread] == [first]
    marked = await ctx.api.post(f"/v1/messages/{first}/read")
    assert marked.status_code == 200 and marked.json()["read"] is True
    row = await snapshot(ctx.sessions, Message, id=first)
    assert row is not None and row["read"] is True
    assert (await ctx.api.post(f"/v1/messages/{first}/read")).status_code == 200  # idempotent
    assert (await ctx.api.get("/v1/messages", params={"read": "false"})).json() == []
    assert (await ctx.api.get(f"/v1/messages/{second}")).json()["body"] == "Running late"
