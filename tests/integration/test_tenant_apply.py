"""Whole businesses from YAML into real Postgres: rows, idempotence, edits, refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.engine import make_engine, make_sessions
from shared.db.models import (
    AssistantSettings,
    Booking,
    CalendarConnection,
    Closure,
    Customer,
    KnowledgeItem,
    OpeningHours,
    PhoneNumber,
    Resource,
    ResourceService,
    Service,
    Tenant,
)
from shared.runtime.outbound_guard import UnsafeUrlError, UrlPolicy
from shared.tenancy.prompting import build_system_prompt
from shared.tenancy.tenant_apply import apply, load_spec
from shared.tenancy.tenant_directory import find_by_number
from shared.tenancy.tenant_spec import (
    CalendarSpec,
    ClosureSpec,
    NumberSpec,
    ServiceSpec,
    TenantSpec,
)
from tests.conftest import ROOT, Infra

TENANTS = ROOT / "deploy" / "tenants"
Sessions = async_sessionmaker[AsyncSession]


@pytest_asyncio.fixture
async def sessions(infra: Infra) -> AsyncIterator[Sessions]:
    engine = make_engine(infra.database_url, pool_size=2)
    yield make_sessions(engine)
    await engine.dispose()


async def apply_spec(sessions: Sessions, spec: TenantSpec) -> str:
    async with sessions() as session:
        return await apply(session, spec)


async def snapshot(sessions: Sessions, tenant_id: str) -> dict[str, Any]:
    """Every row of the tenant, by table, as comparable values including ids."""
    async with sessions() as session:

        async def rows(model: Any, *columns: Any) -> list[tuple[Any, ...]]:
            query = select(*columns).where(model.tenant_id == tenant_id).order_by(*columns)
            return [tuple(r) for r in await session.execute(query)]

        links = await session.execute(
            select(ResourceService.resource_id, ResourceService.service_id)
            .join(Resource, Resource.id == ResourceService.resource_id)
            .where(Resource.tenant_id == tenant_id)
            .order_by(ResourceService.resource_id, ResourceService.service_id)
        )
        tenant = await session.get(Tenant, tenant_id)
        assert tenant is not None
        return {
            "tenant": (tenant.slug, tenant.name, tenant.policies, tenant.horizon_days),
            "numbers": await rows(PhoneNumber, PhoneNumber.e164, PhoneNumber.transfer_number),
            "services": await rows(Service, Service.id, Service.name, Service.price_minor),
            "resources": await rows(Resource, Resource.id, Resource.name, Resource.active),
            "links": [tuple(r) for r in links],
            "hours": await rows(OpeningHours, OpeningHours.id, OpeningHours.resource_id),
            "closures": await rows(Closure, Closure.id, Closure.starts_on),
            "knowledge": await rows(KnowledgeItem, KnowledgeItem.id),
            "calendars": await rows(CalendarConnection, CalendarConnection.id),
        }


def performs(snap: dict[str, Any]) -> dict[str, set[str]]:
    """Resource name -> names of the services it performs."""
    resources = {rid: name for rid, name, _ in snap["resources"]}
    services = {sid: name for sid, name, _ in snap["services"]}
    result: dict[str, set[str]] = {name: set() for name in resources.values()}
    for rid, sid in snap["links"]:
        result[resources[rid]].add(services[sid])
    return result


async def test_daves_barbershop_rows(sessions: Sessions) -> None:
    tenant_id = await apply_spec(sessions, load_spec(TENANTS / "daves-barbershop.yaml"))
    snap = await snapshot(sessions, tenant_id)
    assert snap["tenant"][:2] == ("daves-barbershop", "Dave's Barbershop")
    assert snap["numbers"] == [("+441632960001", "+441632960099")]
    assert {(n, p) for _, n, p in snap["services"]} == {
        ("Men's Haircut", 2500),
        ("Beard Trim", 1500),
    }
    assert performs(snap) == {"Dave": {"Men's Haircut", "Beard Trim"}, "Sam": {"Men's Haircut"}}
    async with sessions() as session:
        tenant = await session.get(Tenant, tenant_id)
        settings = await session.get(AssistantSettings, tenant_id)
        haircut = await session.scalar(
            select(Service).where(Service.tenant_id == tenant_id, Service.name == "Men's Haircut")
        )
        dave = await session.scalar(
            select(Resource).where(Resource.tenant_id == tenant_id, Resource.name == "Dave")
        )
        assert tenant and settings and haircut and dave
        dave_monday = (
            await session.execute(
                select(OpeningHours.opens, OpeningHours.closes)
                .where(OpeningHours.resource_id == dave.id, OpeningHours.weekday == 0)
                .order_by(OpeningHours.opens)
            )
        ).all()
        business_sunday = await session.scalar(
            select(func.count())
            .select_from(OpeningHours)
            .where(
                OpeningHours.tenant_id == tenant_id,
                OpeningHours.resource_id.is_(None),
                OpeningHours.weekday == 6,
            )
        )
        sam_away = await session.scalar(
            select(Closure.starts_on)
            .join(Resource, Resource.id == Closure.resource_id)
            .where(Resource.name == "Sam", Resource.tenant_id == tenant_id)
        )
    assert (tenant.timezone, tenant.currency, tenant.min_notice_min) == ("Europe/London", "GBP", 60)
    assert settings.greeting == "Thanks for calling Dave's Barbershop, how can I help?"
    assert settings.max_call_minutes == 10
    assert (haircut.duration_min, haircut.buffer_min, haircut.currency) == (30, 5, "GBP")
    assert [tuple(r) for r in dave_monday] == [(time(9), time(13)), (time(14), time(17, 30))]
    assert business_sunday == 0
    assert sam_away == date(2026, 8, 10)
    assert len(snap["hours"]) == 6 + 11 + 4  # business Mon-Sat, Dave split shifts, Sam
    assert len(snap["closures"]) == 3 and len(snap["knowledge"]) == 3


async def test_sunrise_dental_rows(sessions: Sessions) -> None:
    tenant_id = await apply_spec(sessions, load_spec(TENANTS / "sunrise-dental.yaml"))
    snap = await snapshot(sessions, tenant_id)
    prices = {name: price for _, name, price in snap["services"]}
    assert prices == {
        "Check-up": 4500,
        "Cleaning": 6500,
        "Emergency appointment": 8500,
        "Consultation": 3000,
    }
    dentist = {"Check-up", "Emergency appointment", "Consultation"}
    assert performs(snap) == {
        "Dr Patel": dentist,
        "Dr Okafor": dentist,
        "Emma (hygienist)": {"Cleaning"},
    }
    assert snap["numbers"] == [("+441632960002", "+441632960098")]
    async with sessions() as session:
        cleaning = await session.scalar(
            select(Service).where(Service.tenant_id == tenant_id, Service.name == "Cleaning")
        )
    assert cleaning is not None and (cleaning.duration_min, cleaning.buffer_min) == (45, 15)


async def test_luigis_trattoria_tables(sessions: Sessions) -> None:
    tenant_id = await apply_spec(sessions, load_spec(TENANTS / "luigis-trattoria.yaml"))
    snap = await snapshot(sessions, tenant_id)
    async with sessions() as session:
        tables = (
            await session.execute(
                select(Resource.kind, Resource.capacity)
                .where(Resource.tenant_id == tenant_id)
                .order_by(Resource.name)
            )
        ).all()
        reservation = await session.scalar(select(Service).where(Service.tenant_id == tenant_id))
    assert [tuple(t) for t in tables] == [("table", c) for c in (2, 2, 4, 4, 4, 6)]
    assert reservation is not None
    assert (reservation.name, reservation.duration_min) == ("Table reservation", 90)
    assert all(names == {"Table reservation"} for names in performs(snap).values())
    assert snap["numbers"] == [("+441632960003", None)]


@pytest.mark.parametrize("file", ["daves-barbershop", "sunrise-dental", "luigis-trattoria"])
async def test_applying_twice_keeps_ids_and_counts(sessions: Sessions, file: str) -> None:
    spec = load_spec(TENANTS / f"{file}.yaml")
    first_id = await apply_spec(sessions, spec)
    first = await snapshot(sessions, first_id)
    second_id = await apply_spec(sessions, load_spec(TENANTS / f"{file}.yaml"))
    assert second_id == first_id
    assert await snapshot(sessions, second_id) == first
    async with sessions() as session:
        assert await session.scalar(select(func.count()).where(Tenant.slug == spec.slug)) == 1


def private_copy(slug: str, e164: str) -> TenantSpec:
    """Dave's Barbershop under another slug and number, so edits disturb no other test."""
    spec = load_spec(TENANTS / "daves-barbershop.yaml")
    number = NumberSpec(e164=e164, transfer_number=None)
    calendar = CalendarSpec(kind="caldav", staff="Dave", config={"url": "https://cal.example/d"})
    return spec.model_copy(update={"slug": slug, "numbers": [number], "calendars": [calendar]})


def edited(spec: TenantSpec, **changes: Any) -> TenantSpec:
    return TenantSpec.model_validate(spec.model_dump(by_alias=True) | changes)


async def test_edits_update_in_place_deactivate_staff_and_refuse_booked_service(
    sessions: Sessions,
) -> None:
    spec = private_copy("edit-barbers", "+441632960101")
    tenant_id = await apply_spec(sessions, spec)
    before = await snapshot(sessions, tenant_id)
    assert len(before["calendars"]) == 1

    services = [s.model_dump() for s in spec.services]
    services[0]["price"] = Decimal("27.50")  # Men's Haircut
    without_sam = [s.model_dump(by_alias=True) for s in spec.staff if s.name != "Sam"]
    closures = [c.model_dump(by_alias=True) for c in spec.closures if c.staff != "Sam"]
    cheaper = edited(spec, services=services, staff=without_sam, closures=closures)
    await apply_spec(sessions, cheaper)
    after = await snapshot(sessions, tenant_id)
    ids = {name: sid for sid, name, _ in before["services"]}
    assert {(sid, name, price) for sid, name, price in after["services"]} == {
        (ids["Men's Haircut"], "Men's Haircut", 2750),
        (ids["Beard Trim"], "Beard Trim", 1500),
    }
    assert {name: active for _, name, active in after["resources"]} == {"Dave": True, "Sam": False}
    assert [r[:2] for r in after["resources"]] == [r[:2] for r in before["resources"]]
    sam_id = next(rid for rid, name, _ in before["resources"] if name == "Sam")
    assert all(resource_id != sam_id for _, resource_id in after["hours"])
    assert all(resource_id != sam_id for resource_id, _ in after["links"])
    assert len(after["closures"]) == 2
    unchanged = set(before["hours"]) - {h for h in before["hours"] if h[1] == sam_id}
    assert set(after["hours"]) == unchanged  # untouched rows keep their ids

    # a booked service cannot be removed; nothing of the failed apply is written
    async with sessions() as session:
        customer = Customer(tenant_id=tenant_id, phone="+447700900001", name="Ann")
        session.add(customer)
        await session.flush()
        start = datetime(2026, 9, 1, 10, tzinfo=UTC)
        session.add(
            Booking(
                tenant_id=tenant_id,
                customer_id=customer.id,
                service_id=ids["Beard Trim"],
                resource_id=next(r for r, n, _ in before["resources"] if n == "Dave"),
                starts_at=start,
                ends_at=start + timedelta(minutes=15),
                blocked_until=start + timedelta(minutes=20),
            )
        )
        await session.commit()
    dave_haircuts_only = without_sam[0] | {"services": ["Men's Haircut"]}
    only_haircut = edited(cheaper, services=services[:1], staff=[dave_haircuts_only], knowledge=[])
    with pytest.raises(ValueError, match="Beard Trim"):
        await apply_spec(sessions, only_haircut)
    assert await snapshot(sessions, tenant_id) == after

    # an unbooked service is deleted
    services.append({"name": "Hot Towel Shave", "duration_min": 20, "price": 18})
    await apply_spec(sessions, edited(cheaper, services=services))
    with_shave = await snapshot(sessions, tenant_id)
    assert "Hot Towel Shave" in {name for _, name, _ in with_shave["services"]}
    await apply_spec(sessions, edited(cheaper, calendars=[]))
    final = await snapshot(sessions, tenant_id)
    assert [name for _, name, _ in final["services"]] == [name for _, name, _ in after["services"]]
    assert final["calendars"] == []


async def test_number_of_another_tenant_is_refused(sessions: Sessions) -> None:
    owner = private_copy("owner-barbers", "+441632960102")
    await apply_spec(sessions, owner)
    thief = private_copy("thief-barbers", "+441632960102")
    with pytest.raises(ValueError, match=r"\+441632960102 belongs to another tenant"):
        await apply_spec(sessions, thief)
    async with sessions() as session:
        assert await session.scalar(select(Tenant.id).where(Tenant.slug == "thief-barbers")) is None
        number = await session.get(PhoneNumber, "+441632960102")
        owner_row = await session.scalar(select(Tenant).where(Tenant.slug == "owner-barbers"))
        assert number is not None and owner_row is not None
        assert number.tenant_id == owner_row.id


async def test_profile_and_prompt_from_applied_yaml(sessions: Sessions) -> None:
    await apply_spec(sessions, load_spec(TENANTS / "daves-barbershop.yaml"))
    async with sessions() as session:
        profile = await find_by_number(session, "+441632960001", today=date(2026, 12, 1))
    assert profile is not None
    assert profile.transfer_number == "+441632960099"
    assert [c.reason for c in profile.closures] == ["Christmas", "New Year's Day"]
    assert {s.name: s.services for s in profile.staff} == {
        "Dave": ["Beard Trim", "Men's Haircut"],
        "Sam": ["Men's Haircut"],
    }
    assert profile.hours[0] == [(time(9), time(17, 30))] and 6 not in profile.hours
    prompt = build_system_prompt(profile, now=datetime(2026, 12, 1, 15, 5, tzinfo=UTC))
    assert "Opening hours: Monday to Friday 9am to 5:30pm, Saturday 9am to 1pm, closed Sunday." in (
        prompt
    )
    assert "Men's Haircut, £25, 30 minutes" in prompt
    assert "Today is Tuesday 1 December 2026 and the time is 3:05pm (Europe/London)." in prompt


def write(tmp_path: Path, changes: dict[str, Any]) -> Path:
    base = load_spec(TENANTS / "daves-barbershop.yaml").model_dump(mode="json", by_alias=True)
    path = tmp_path / "tenant.yaml"
    path.write_text(yaml.safe_dump(base | changes), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"hours": {"mon": ["09:00-25:00"]}}, "hours.mon", "25:00 is not a time of day"),
        ({"hours": {"tue": ["17:00-09:00"]}}, "hours.tue", "opening time must be before"),
        ({"hours": {"funday": ["09:00-17:00"]}}, "hours.funday", "Extra inputs"),
        ({"numbers": [{"e164": "01632 960001"}]}, "numbers.0.e164", "should match pattern"),
        (
            {"staff": [{"name": "Kim", "services": ["Perm"]}]},
            "",
            "staff 'Kim': unknown service 'Perm'",
        ),
        ({"timezone": "Europe/Atlantis"}, "timezone", "unknown time zone 'Europe/Atlantis'"),
        ({"closures": [{"from": "2026-05-02", "to": "2026-05-01"}]}, "closures.0", "before"),
    ],
)
def test_validation_errors_name_the_field(
    tmp_path: Path, changes: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        load_spec(write(tmp_path, changes))
    errors = caught.value.errors()
    assert len(errors) == 1
    assert ".".join(str(p) for p in errors[0]["loc"]) == field
    assert message in errors[0]["msg"]


def test_bad_yaml_and_wrong_shape_are_value_errors(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("slug: [unclosed", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_spec(path)
    path.write_text("- just a list", encoding="utf-8")
    with pytest.raises(ValueError, match="expected a mapping"):
        load_spec(path)


def test_closure_without_to_is_one_day() -> None:
    closure = ClosureSpec.model_validate({"from": "2026-12-25"})
    assert closure.last_day() == date(2026, 12, 25)
    assert ServiceSpec(name="x", duration_min=5, price=Decimal("7.05")).price_minor() == 705


@pytest.mark.parametrize(
    ("n", "kind", "config"),
    [
        (1, "caldav", {"calendar_url": "http://169.254.169.254/latest/meta-data/"}),
        (2, "caldav", {"calendar_url": "http://127.0.0.1:5232/dave/"}),
        (3, "google", {"calendar_id": "dave", "access_token": "t", "base_url": "http://[::1]:9/"}),
    ],
)
async def test_a_calendar_url_reaching_inside_is_refused_and_nothing_is_written(
    sessions: Sessions, n: int, kind: str, config: dict[str, str]
) -> None:
    spec = private_copy(f"ssrf-calendar-{n}", f"+44163296077{n}").model_copy(
        update={"calendars": [CalendarSpec(kind=kind, staff="Dave", config=config)]}
    )
    with pytest.raises(UnsafeUrlError, match="calendar of 'Dave'"):
        async with sessions() as session:
            await apply(session, spec, UrlPolicy.parse(""))
    async with sessions() as session:
        assert await session.scalar(select(func.count()).where(Tenant.slug == spec.slug)) == 0
    # an operator who allows the address applies the same file
    async with sessions() as session:
        allowed = UrlPolicy.parse("127.0.0.0/8,::1/128,169.254.169.254/32")
        assert await apply(session, spec, allowed)
