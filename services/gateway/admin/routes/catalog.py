"""`/v1/services` and `/v1/staff`: what the business sells, and who performs it."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, Response, status
from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.admin.auth import TenantId
from services.gateway.admin.catalog_schemas import (
    ServiceIn,
    ServiceOut,
    ServicePatch,
    StaffIn,
    StaffOut,
    StaffPatch,
)
from services.gateway.admin.params import ObjectId, StaffIdPath
from services.gateway.admin.schemas import AUTH_ERRORS, error_doc
from services.gateway.admin.store import (
    Session,
    apply_changes,
    bad_request,
    commit_or_conflict,
    conflict,
    find_owned,
    flush_or_conflict,
    get_owned,
)
from shared.db.models import Booking, Resource, ResourceService, Service, Tenant

_NOT_FOUND = error_doc(404, "No such object in this tenant.")
_CONFLICT = error_doc(409, "Clashes with existing data.")
services_router = APIRouter(prefix="/v1/services", tags=["services"], responses=AUTH_ERRORS)
staff_router = APIRouter(prefix="/v1/staff", tags=["staff"], responses=AUTH_ERRORS)


# --- services -----------------------------------------------------------------------------


def _name_taken(kind: str, name: str) -> str:
    return f"a {kind} named {name!r} already exists"


@services_router.get("", response_model=list[ServiceOut], summary="List services")
async def list_services(tenant_id: TenantId, session: Session) -> list[Service]:
    """Every service of this tenant, by name."""
    rows = await session.scalars(
        select(Service).where(Service.tenant_id == tenant_id).order_by(Service.name)
    )
    return list(rows)


@services_router.post(
    "",
    response_model=ServiceOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a service",
    responses=_CONFLICT,
)
async def create_service(body: ServiceIn, tenant_id: TenantId, session: Session) -> Service:
    """Add a service; its currency defaults to the tenant's."""
    if await find_owned(session, Service, tenant_id, name=body.name) is not None:
        raise conflict(_name_taken("service", body.name))
    fields = body.model_dump()
    if fields["currency"] is None:
        fields["currency"] = await session.scalar(
            select(Tenant.currency).where(Tenant.id == tenant_id)
        )
    service = Service(tenant_id=tenant_id, **fields)
    session.add(service)
    await commit_or_conflict(session, _name_taken("service", body.name))
    return service


@services_router.get(
    "/{service_id}", response_model=ServiceOut, summary="Get a service", responses=_NOT_FOUND
)
async def get_service(service_id: ObjectId, tenant_id: TenantId, session: Session) -> Service:
    """One service."""
    return await get_owned(session, Service, tenant_id, "service", id=service_id)


@services_router.patch(
    "/{service_id}",
    response_model=ServiceOut,
    summary="Update a service",
    responses=_NOT_FOUND | _CONFLICT,
)
async def patch_service(
    service_id: ObjectId, body: ServicePatch, tenant_id: TenantId, session: Session
) -> Service:
    """Change a service (existing bookings keep their times)."""
    service = await get_owned(session, Service, tenant_id, "service", id=service_id)
    changes = body.changes()
    new_name = changes.get("name")
    if new_name is not None and new_name != service.name:
        if await find_owned(session, Service, tenant_id, name=new_name) is not None:
            raise conflict(_name_taken("service", new_name))
    apply_changes(service, changes)
    await commit_or_conflict(session, _name_taken("service", str(new_name)))
    return service


@services_router.delete(
    "/{service_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a service",
    responses=_NOT_FOUND | _CONFLICT,
)
async def delete_service(service_id: ObjectId, tenant_id: TenantId, session: Session) -> Response:
    """Delete a service that has never been booked."""
    service = await get_owned(session, Service, tenant_id, "service", id=service_id)
    in_use = f"service {service.name!r} has bookings and cannot be deleted"
    if await session.scalar(select(exists().where(Booking.service_id == service.id))):
        raise conflict(in_use)
    await session.delete(service)
    await commit_or_conflict(session, in_use)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- staff --------------------------------------------------------------------------------


async def _services_of(session: AsyncSession, staff_ids: Iterable[int]) -> dict[int, list[str]]:
    performed: dict[int, list[str]] = {staff_id: [] for staff_id in staff_ids}
    rows = await session.execute(
        select(ResourceService.resource_id, ResourceService.service_id)
        .where(ResourceService.resource_id.in_(list(performed)))
        .order_by(ResourceService.service_id)
    )
    for staff_id, service_id in rows:
        performed[staff_id].append(service_id)
    return performed


async def _set_services(
    session: AsyncSession, tenant_id: str, staff: Resource, service_ids: list[str]
) -> None:
    """Replace the services a staff member performs (all must be this tenant's)."""
    known = set(
        await session.scalars(
            select(Service.id).where(Service.tenant_id == tenant_id, Service.id.in_(service_ids))
        )
    )
    unknown = [service_id for service_id in service_ids if service_id not in known]
    if unknown:
        raise bad_request(f"unknown service id(s): {', '.join(unknown)}")
    await session.execute(delete(ResourceService).where(ResourceService.resource_id == staff.id))
    session.add_all(ResourceService(resource_id=staff.id, service_id=sid) for sid in service_ids)


def _staff_out(staff: Resource, service_ids: list[str]) -> StaffOut:
    return StaffOut(
        id=staff.id,
        name=staff.name,
        kind=staff.kind,
        capacity=staff.capacity,
        active=staff.active,
        service_ids=service_ids,
    )


@staff_router.get("", response_model=list[StaffOut], summary="List staff")
async def list_staff(tenant_id: TenantId, session: Session) -> list[StaffOut]:
    """Every staff member (and other bookable resource) of this tenant."""
    rows = list(
        await session.scalars(
            select(Resource).where(Resource.tenant_id == tenant_id).order_by(Resource.name)
        )
    )
    performed = await _services_of(session, (row.id for row in rows))
    return [_staff_out(row, performed[row.id]) for row in rows]


@staff_router.post(
    "",
    response_model=StaffOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a staff member",
    responses=_CONFLICT | error_doc(400, "Unknown service id."),
)
async def create_staff(body: StaffIn, tenant_id: TenantId, session: Session) -> StaffOut:
    """Add a staff member and the services they perform."""
    if await find_owned(session, Resource, tenant_id, name=body.name) is not None:
        raise conflict(_name_taken("staff member", body.name))
    staff = Resource(tenant_id=tenant_id, **body.model_dump(exclude={"service_ids"}))
    session.add(staff)
    await flush_or_conflict(session, _name_taken("staff member", body.name))
    await _set_services(session, tenant_id, staff, body.service_ids)
    await commit_or_conflict(session, _name_taken("staff member", body.name))
    return _staff_out(staff, body.service_ids)


@staff_router.get(
    "/{staff_id}", response_model=StaffOut, summary="Get a staff member", responses=_NOT_FOUND
)
async def get_staff(staff_id: StaffIdPath, tenant_id: TenantId, session: Session) -> StaffOut:
    """One staff member with the services they perform."""
    staff = await get_owned(session, Resource, tenant_id, "staff member", id=staff_id)
    return _staff_out(staff, (await _services_of(session, [staff.id]))[staff.id])


@staff_router.patch(
    "/{staff_id}",
    response_model=StaffOut,
    summary="Update a staff member",
    responses=_NOT_FOUND | _CONFLICT,
)
async def patch_staff(
    staff_id: StaffIdPath, body: StaffPatch, tenant_id: TenantId, session: Session
) -> StaffOut:
    """Change a staff member; `service_ids`, when sent, replaces the whole set."""
    staff = await get_owned(session, Resource, tenant_id, "staff member", id=staff_id)
    changes = body.changes()
    service_ids: list[str] | None = changes.pop("service_ids", None)
    new_name = changes.get("name")
    if new_name is not None and new_name != staff.name:
        if await find_owned(session, Resource, tenant_id, name=new_name) is not None:
            raise conflict(_name_taken("staff member", new_name))
    apply_changes(staff, changes)
    await flush_or_conflict(session, _name_taken("staff member", str(new_name)))
    if service_ids is not None:
        await _set_services(session, tenant_id, staff, service_ids)
    await session.commit()
    return _staff_out(staff, (await _services_of(session, [staff.id]))[staff.id])


@staff_router.delete(
    "/{staff_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a staff member",
    responses=_NOT_FOUND | _CONFLICT,
)
async def delete_staff(staff_id: StaffIdPath, tenant_id: TenantId, session: Session) -> Response:
    """Delete a staff member who has no bookings (otherwise set `active` to false)."""
    staff = await get_owned(session, Resource, tenant_id, "staff member", id=staff_id)
    in_use = (
        f"staff member {staff.name!r} has bookings and cannot be deleted; "
        "set active to false instead"
    )
    if await session.scalar(select(exists().where(Booking.resource_id == staff.id))):
        raise conflict(in_use)
    await session.delete(staff)
    await commit_or_conflict(session, in_use)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
