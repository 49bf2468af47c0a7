"""Create or update a whole business from one YAML document (`frontdesk tenant apply FILE`).

The YAML shape is documented at the top of `deploy/tenants/daves-barbershop.yaml`. `load_spec`
validates everything it can without a database (times, weekdays, E.164, time zone, which
services a staff member performs); `apply` writes the tenant in one transaction:

- tenant (by slug), services and staff (by name) and numbers (by E.164) are updated in place,
  so applying the same file twice keeps every id;
- a service no longer in the file is deleted, unless it has bookings (ValueError naming it);
- a staff member no longer in the file is deactivated (bookings keep pointing at them);
- opening hours, closures, FAQ and calendar connections are replaced by the file's (rows that
  did not change keep their ids);
- a number owned by another tenant is refused (ValueError).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import (
    AssistantSettings,
    Booking,
    CalendarConnection,
    Closure,
    KnowledgeItem,
    OpeningHours,
    PhoneNumber,
    Resource,
    ResourceService,
    Service,
    Tenant,
)
from shared.runtime.outbound_guard import UnsafeUrlError, UrlPolicy, check_url
from shared.tenancy.tenant_spec import WEEKDAYS, TenantSpec, WeeklyHoursSpec

__all__ = ["TenantSpec", "apply", "load_spec"]

ReplacedRow = OpeningHours | Closure | KnowledgeItem | CalendarConnection


def load_spec(path: str | Path) -> TenantSpec:
    """Parse and validate a tenant YAML file (pydantic ValidationError names the bad field)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of tenant fields at the top level")
    return TenantSpec.model_validate(data)


CALENDAR_URL_KEYS = ("calendar_url", "base_url")
"""Calendar config keys that name a server the tools service will connect to."""


async def check_calendar_urls(spec: TenantSpec, policy: UrlPolicy) -> None:
    """Refuse calendar URLs that reach inside (loopback, private, link-local, metadata), as
    webhook URLs are refused; the tools service checks again at every connect."""
    for calendar in spec.calendars:
        for key in CALENDAR_URL_KEYS:
            url = calendar.config.get(key)
            if not isinstance(url, str) or not url:
                continue
            try:
                await check_url(url, policy)
            except UnsafeUrlError as exc:
                raise UnsafeUrlError(
                    f"calendar of {calendar.staff!r}: {key} refused: {exc}"
                ) from exc


async def apply(
    session: AsyncSession, spec: TenantSpec, url_policy: UrlPolicy | None = None
) -> str:
    """Create or update the tenant described by `spec`; returns its id. All or nothing. With
    `url_policy`, calendar URLs are checked first (nothing is written if one is refused)."""
    if url_policy is not None:
        await check_calendar_urls(spec, url_policy)
    try:
        tenant_id = await _apply(session, spec)
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    return tenant_id


async def _apply(session: AsyncSession, spec: TenantSpec) -> str:
    tenant = await _upsert_tenant(session, spec)
    await _upsert_assistant(session, tenant.id, spec)
    await _sync_numbers(session, tenant.id, spec)
    service_ids = await _sync_services(session, tenant.id, spec)
    resource_ids = await _sync_staff(session, tenant.id, spec, service_ids)
    await _replace_schedule(session, tenant.id, spec, resource_ids)
    await session.flush()
    return tenant.id


async def _upsert_tenant(session: AsyncSession, spec: TenantSpec) -> Tenant:
    tenant = await session.scalar(select(Tenant).where(Tenant.slug == spec.slug).with_for_update())
    if tenant is None:
        tenant = Tenant(slug=spec.slug)
        session.add(tenant)
    tenant.name, tenant.address = spec.name, spec.address
    tenant.timezone, tenant.currency = spec.timezone, spec.currency
    tenant.min_notice_min = spec.booking.min_notice_min
    tenant.slot_step_min = spec.booking.slot_step_min
    tenant.horizon_days = spec.booking.horizon_days
    tenant.policies = "\n".join(spec.policies)
    tenant.recording_enabled = spec.recording.enabled
    tenant.recording_disclosure = spec.recording.disclosure
    tenant.recording_retention_days = spec.recording.retention_days
    tenant.speech = spec.speech
    await session.flush()
    return tenant


async def _upsert_assistant(session: AsyncSession, tenant_id: str, spec: TenantSpec) -> None:
    settings = await session.get(AssistantSettings, tenant_id)
    if settings is None:
        settings = AssistantSettings(tenant_id=tenant_id)
        session.add(settings)
    a = spec.assistant
    settings.greeting, settings.language = a.greeting, a.language
    settings.prompt_template, settings.custom_prompt = a.prompt_template, a.custom_prompt
    settings.max_call_minutes = a.max_call_minutes
    settings.conversation = a.conversation.model_dump(exclude_none=True)


async def _sync_numbers(session: AsyncSession, tenant_id: str, spec: TenantSpec) -> None:
    wanted = {n.e164: n for n in spec.numbers}
    for e164, number_spec in wanted.items():
        number = await session.get(PhoneNumber, e164)
        if number is None:
            number = PhoneNumber(e164=e164, tenant_id=tenant_id)
            session.add(number)
        elif number.tenant_id != tenant_id:
            owner = await session.get(Tenant, number.tenant_id)
            raise ValueError(
                f"number {e164} belongs to another tenant "
                f"({owner.slug if owner else number.tenant_id}); remove it there first"
            )
        number.pipeline, number.voice = number_spec.pipeline, number_spec.voice
        number.transfer_number = number_spec.transfer_number
    existing = await session.scalars(select(PhoneNumber).where(PhoneNumber.tenant_id == tenant_id))
    for number in existing:
        if number.e164 not in wanted:
            await session.delete(number)


async def _sync_services(session: AsyncSession, tenant_id: str, spec: TenantSpec) -> dict[str, str]:
    """Upsert services by name, delete the removed ones; returns name -> id."""
    existing = {
        s.name: s
        for s in await session.scalars(select(Service).where(Service.tenant_id == tenant_id))
    }
    removed = [s for name, s in existing.items() if name not in spec.service_names()]
    if removed:
        booked = await session.scalars(
            select(Service.name)
            .join(Booking, Booking.service_id == Service.id)
            .where(Service.id.in_([s.id for s in removed]))
            .distinct()
            .order_by(Service.name)
        )
        names = list(booked)
        if names:
            listed = ", ".join(repr(n) for n in names)
            raise ValueError(
                f"service {listed} has bookings and cannot be removed; keep it in the file "
                "(bookings refer to it)"
            )
        for service in removed:
            await session.delete(service)
    for s in spec.services:
        row = existing.get(s.name)
        if row is None:
            row = Service(tenant_id=tenant_id, name=s.name)
            session.add(row)
        row.duration_min, row.buffer_min = s.duration_min, s.buffer_min
        row.price_minor, row.currency = s.price_minor(), spec.currency
        row.description = s.description
    await session.flush()
    rows = await session.scalars(select(Service).where(Service.tenant_id == tenant_id))
    return {s.name: s.id for s in rows}


async def _sync_staff(
    session: AsyncSession, tenant_id: str, spec: TenantSpec, service_ids: dict[str, str]
) -> dict[str, int]:
    """Upsert resources by name, deactivate removed ones, sync who performs what;
    returns name -> id of the active resources."""
    existing = {
        r.name: r
        for r in await session.scalars(select(Resource).where(Resource.tenant_id == tenant_id))
    }
    wanted_names = {s.name for s in spec.staff}
    for name, resource in existing.items():
        if name not in wanted_names:
            resource.active = False
    for s in spec.staff:
        row = existing.get(s.name)
        if row is None:
            row = existing[s.name] = Resource(tenant_id=tenant_id, name=s.name)
            session.add(row)
        row.kind, row.capacity, row.active = s.kind, s.capacity, True
    await session.flush()
    resource_ids = {s.name: existing[s.name].id for s in spec.staff}

    wanted_links = {
        (resource_ids[s.name], service_ids[service])
        for s in spec.staff
        for service in spec.services_of(s)
    }
    all_ids = [r.id for r in existing.values()]
    links = await session.scalars(
        select(ResourceService).where(ResourceService.resource_id.in_(all_ids))
    )
    for link in links:
        key = (link.resource_id, link.service_id)
        if key in wanted_links:
            wanted_links.discard(key)
        else:
            await session.delete(link)
    for resource_id, service_id in sorted(wanted_links):
        session.add(ResourceService(resource_id=resource_id, service_id=service_id))
    return resource_ids


def _hours_rows(hours: WeeklyHoursSpec, resource_id: int | None) -> list[dict[str, Any]]:
    return [
        {"resource_id": resource_id, "weekday": weekday, "opens": opens, "closes": closes}
        for weekday, day in enumerate(WEEKDAYS)
        for opens, closes in getattr(hours, day)
    ]


async def _replace_schedule(
    session: AsyncSession, tenant_id: str, spec: TenantSpec, resource_ids: dict[str, int]
) -> None:
    """Hours, closures, FAQ and calendars become exactly the file's."""
    hours = _hours_rows(spec.hours, None)
    for s in spec.staff:
        if s.hours is not None:
            hours += _hours_rows(s.hours, resource_ids[s.name])
    await _replace_rows(session, OpeningHours, tenant_id, hours)

    def staff_id(name: str | None) -> int | None:
        return resource_ids[name] if name is not None else None

    closures = [
        {
            "resource_id": staff_id(c.staff),
            "starts_on": c.starts_on,
            "ends_on": c.last_day(),
            "reason": c.reason,
        }
        for c in spec.closures
    ]
    await _replace_rows(session, Closure, tenant_id, closures)
    knowledge = [{"question": k.q, "answer": k.a} for k in spec.knowledge]
    await _replace_rows(session, KnowledgeItem, tenant_id, knowledge)
    calendars = [
        {
            "resource_id": staff_id(c.staff),
            "kind": c.kind,
            "config": c.config,
            "timeout_ms": c.timeout_ms,
        }
        for c in spec.calendars
    ]
    await _replace_rows(session, CalendarConnection, tenant_id, calendars)


def _content_key(values: dict[str, Any], fields: Sequence[str]) -> str:
    return json.dumps([values[f] for f in fields], sort_keys=True, default=str)


async def _replace_rows(
    session: AsyncSession,
    model: type[ReplacedRow],
    tenant_id: str,
    wanted: list[dict[str, Any]],
) -> None:
    """Make the tenant's rows of `model` equal `wanted`: unchanged rows stay (same ids),
    the others are deleted, missing ones inserted."""
    existing: list[ReplacedRow] = list(
        await session.scalars(select(model).where(model.tenant_id == tenant_id))
    )
    fields = sorted(wanted[0]) if wanted else []
    pool: dict[str, list[ReplacedRow]] = {}
    for row in existing:
        values = {f: getattr(row, f) for f in fields}
        pool.setdefault(_content_key(values, fields), []).append(row)
    for values in wanted:
        same = pool.get(_content_key(values, fields))
        if same:
            same.pop()
        else:
            session.add(model(tenant_id=tenant_id, **values))
    for rows in pool.values():
        for row in rows:
            await session.delete(row)
