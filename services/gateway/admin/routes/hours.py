"""`/v1/hours` and `/v1/closures`: when the business (or one staff member) is open."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.admin.auth import TenantId
from services.gateway.admin.catalog_schemas import (
    ClosureIn,
    ClosureOut,
    ClosurePatch,
    HoursIn,
    HoursOut,
    HoursPatch,
    check_closure,
    check_hours,
)
from services.gateway.admin.params import ObjectId, StaffFilter
from services.gateway.admin.schemas import AUTH_ERRORS, error_doc
from services.gateway.admin.store import (
    Session,
    apply_changes,
    bad_request,
    conflict,
    find_owned,
    get_owned,
    invalid_body,
)
from shared.db.models import Closure, OpeningHours, Resource

_NOT_FOUND = error_doc(404, "No such object in this tenant.")
_BAD_STAFF = error_doc(400, "Unknown staff id.")
hours_router = APIRouter(prefix="/v1/hours", tags=["hours"], responses=AUTH_ERRORS)
closures_router = APIRouter(prefix="/v1/closures", tags=["closures"], responses=AUTH_ERRORS)
_STAFF_COLUMN = {"staff_id": "resource_id"}


async def _check_staff(session: AsyncSession, tenant_id: str, staff_id: int | None) -> None:
    if staff_id is not None and await find_owned(session, Resource, tenant_id, id=staff_id) is None:
        raise bad_request(f"unknown staff id {staff_id}")


# --- opening hours ------------------------------------------------------------------------


def _hours_out(row: OpeningHours) -> HoursOut:
    return HoursOut(
        id=row.id, staff_id=row.resource_id, weekday=row.weekday, opens=row.opens, closes=row.closes
    )


async def _check_no_overlap(session: AsyncSession, tenant_id: str, row: OpeningHours) -> None:
    """Two intervals of the same scope and weekday must not overlap (touching is fine)."""
    same_scope = (
        OpeningHours.resource_id.is_(None)
        if row.resource_id is None
        else OpeningHours.resource_id == row.resource_id
    )
    clash = await session.scalar(
        select(OpeningHours).where(
            OpeningHours.tenant_id == tenant_id,
            same_scope,
            OpeningHours.weekday == row.weekday,
            OpeningHours.opens < row.closes,
            OpeningHours.closes > row.opens,
            OpeningHours.id != row.id,
        )
    )
    if clash is not None:
        raise conflict(
            f"overlaps opening hours {clash.id} "
            f"({clash.opens.isoformat('minutes')}-{clash.closes.isoformat('minutes')})"
        )


@hours_router.get("", response_model=list[HoursOut], summary="List opening hours")
async def list_hours(
    tenant_id: TenantId, session: Session, staff_id: StaffFilter = None
) -> list[HoursOut]:
    """Weekly opening intervals: the business's (staff_id null) and each staff member's."""
    query = select(OpeningHours).where(OpeningHours.tenant_id == tenant_id)
    if staff_id is not None:
        query = query.where(OpeningHours.resource_id == staff_id)
    rows = await session.scalars(
        query.order_by(
            OpeningHours.resource_id.nulls_first(), OpeningHours.weekday, OpeningHours.opens
        )
    )
    return [_hours_out(row) for row in rows]


@hours_router.post(
    "",
    response_model=HoursOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add opening hours",
    responses=_BAD_STAFF | error_doc(409, "Overlapping interval."),
)
async def create_hours(body: HoursIn, tenant_id: TenantId, session: Session) -> HoursOut:
    """Add a weekly interval for the business or one staff member."""
    await _check_staff(session, tenant_id, body.staff_id)
    row = OpeningHours(
        tenant_id=tenant_id,
        resource_id=body.staff_id,
        weekday=body.weekday,
        opens=body.opens,
        closes=body.closes,
    )
    await _check_no_overlap(session, tenant_id, row)
    session.add(row)
    await session.commit()
    return _hours_out(row)


@hours_router.get(
    "/{hours_id}", response_model=HoursOut, summary="Get opening hours", responses=_NOT_FOUND
)
async def get_hours(hours_id: ObjectId, tenant_id: TenantId, session: Session) -> HoursOut:
    """One opening interval."""
    return _hours_out(await get_owned(session, OpeningHours, tenant_id, "hours", id=hours_id))


@hours_router.patch(
    "/{hours_id}",
    response_model=HoursOut,
    summary="Update opening hours",
    responses=_NOT_FOUND | _BAD_STAFF,
)
async def patch_hours(
    hours_id: ObjectId, body: HoursPatch, tenant_id: TenantId, session: Session
) -> HoursOut:
    """Change an interval; the result must still open before it closes."""
    row = await get_owned(session, OpeningHours, tenant_id, "hours", id=hours_id)
    changes = body.changes()
    opens, closes = changes.get("opens", row.opens), changes.get("closes", row.closes)
    try:
        check_hours(opens, closes)
    except ValueError as exc:
        field = "opens" if "opens" in changes else "closes"
        raise invalid_body(field, str(exc), changes.get(field)) from exc
    if "staff_id" in changes:
        await _check_staff(session, tenant_id, changes["staff_id"])
    with session.no_autoflush:
        apply_changes(row, changes, _STAFF_COLUMN)
        await _check_no_overlap(session, tenant_id, row)
    await session.commit()
    return _hours_out(row)


@hours_router.delete(
    "/{hours_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete opening hours",
    responses=_NOT_FOUND,
)
async def delete_hours(hours_id: ObjectId, tenant_id: TenantId, session: Session) -> Response:
    """Remove an opening interval."""
    row = await get_owned(session, OpeningHours, tenant_id, "hours", id=hours_id)
    await session.delete(row)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- closures -----------------------------------------------------------------------------


def _closure_out(row: Closure) -> ClosureOut:
    return ClosureOut(
        id=row.id,
        staff_id=row.resource_id,
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        reason=row.reason,
    )


@closures_router.get("", response_model=list[ClosureOut], summary="List closures")
async def list_closures(
    tenant_id: TenantId, session: Session, staff_id: StaffFilter = None
) -> list[ClosureOut]:
    """Closed date ranges of the business (staff_id null) and of staff members."""
    query = select(Closure).where(Closure.tenant_id == tenant_id)
    if staff_id is not None:
        query = query.where(Closure.resource_id == staff_id)
    rows = await session.scalars(query.order_by(Closure.starts_on, Closure.id))
    return [_closure_out(row) for row in rows]


@closures_router.post(
    "",
    response_model=ClosureOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a closure",
    responses=_BAD_STAFF,
)
async def create_closure(body: ClosureIn, tenant_id: TenantId, session: Session) -> ClosureOut:
    """Close the business (or one staff member) on a range of dates."""
    await _check_staff(session, tenant_id, body.staff_id)
    row = Closure(
        tenant_id=tenant_id,
        resource_id=body.staff_id,
        starts_on=body.starts_on,
        ends_on=body.ends_on,
        reason=body.reason,
    )
    session.add(row)
    await session.commit()
    return _closure_out(row)


@closures_router.get(
    "/{closure_id}", response_model=ClosureOut, summary="Get a closure", responses=_NOT_FOUND
)
async def get_closure(closure_id: ObjectId, tenant_id: TenantId, session: Session) -> ClosureOut:
    """One closure."""
    return _closure_out(await get_owned(session, Closure, tenant_id, "closure", id=closure_id))


@closures_router.patch(
    "/{closure_id}",
    response_model=ClosureOut,
    summary="Update a closure",
    responses=_NOT_FOUND | _BAD_STAFF,
)
async def patch_closure(
    closure_id: ObjectId, body: ClosurePatch, tenant_id: TenantId, session: Session
) -> ClosureOut:
    """Change a closure; the result must still be ordered."""
    row = await get_owned(session, Closure, tenant_id, "closure", id=closure_id)
    changes = body.changes()
    starts_on = changes.get("starts_on", row.starts_on)
    ends_on = changes.get("ends_on", row.ends_on)
    try:
        check_closure(starts_on, ends_on)
    except ValueError as exc:
        field = "starts_on" if "starts_on" in changes else "ends_on"
        raise invalid_body(field, str(exc), changes.get(field)) from exc
    if "staff_id" in changes:
        await _check_staff(session, tenant_id, changes["staff_id"])
    apply_changes(row, changes, _STAFF_COLUMN)
    await session.commit()
    return _closure_out(row)


@closures_router.delete(
    "/{closure_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a closure",
    responses=_NOT_FOUND,
)
async def delete_closure(closure_id: ObjectId, tenant_id: TenantId, session: Session) -> Response:
    """Remove a closure."""
    row = await get_owned(session, Closure, tenant_id, "closure", id=closure_id)
    await session.delete(row)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
