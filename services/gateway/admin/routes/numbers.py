"""`/v1/numbers`: the tenant's phone numbers and how their calls are served."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from sqlalchemy import select

from services.gateway.admin.auth import TenantId
from services.gateway.admin.schemas import (
    AUTH_ERRORS,
    E164_PATTERN,
    NumberIn,
    NumberOut,
    NumberPatch,
    error_doc,
)
from services.gateway.admin.store import (
    Session,
    apply_changes,
    commit_or_conflict,
    conflict,
    get_owned,
)
from shared.db.models import PhoneNumber

router = APIRouter(
    prefix="/v1/numbers",
    tags=["numbers"],
    responses=AUTH_ERRORS,
)
_NOT_FOUND = error_doc(404, "No such number in this tenant.")
NumberPath = Annotated[
    str,
    Path(
        pattern=E164_PATTERN,
        description="The number, E.164 ('+' URL-encoded as %2B).",
        examples=["+441632960001"],
    ),
]


def _taken(e164: str) -> str:
    # Same answer whoever owns it: never reveal another tenant's numbers.
    return f"phone number {e164} is already registered"


@router.get("", response_model=list[NumberOut], summary="List numbers")
async def list_numbers(tenant_id: TenantId, session: Session) -> list[PhoneNumber]:
    """Every phone number routed to this tenant."""
    rows = await session.scalars(
        select(PhoneNumber).where(PhoneNumber.tenant_id == tenant_id).order_by(PhoneNumber.e164)
    )
    return list(rows)


@router.post(
    "",
    response_model=NumberOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a number",
    responses=error_doc(409, "The number is already registered."),
)
async def create_number(body: NumberIn, tenant_id: TenantId, session: Session) -> PhoneNumber:
    """Route a phone number to this tenant."""
    # The one lookup across tenants: a number routes to one tenant only. The answer does not
    # say whose it is.
    if await session.get(PhoneNumber, body.e164) is not None:
        raise conflict(_taken(body.e164))
    number = PhoneNumber(tenant_id=tenant_id, **body.model_dump())
    session.add(number)
    await commit_or_conflict(session, _taken(body.e164))
    return number


@router.get("/{e164}", response_model=NumberOut, summary="Get a number", responses=_NOT_FOUND)
async def get_number(e164: NumberPath, tenant_id: TenantId, session: Session) -> PhoneNumber:
    """One phone number of this tenant."""
    return await get_owned(session, PhoneNumber, tenant_id, "phone number", e164=e164)


@router.patch("/{e164}", response_model=NumberOut, summary="Update a number", responses=_NOT_FOUND)
async def patch_number(
    e164: NumberPath, body: NumberPatch, tenant_id: TenantId, session: Session
) -> PhoneNumber:
    """Change the pipeline, voice or transfer number."""
    number = await get_owned(session, PhoneNumber, tenant_id, "phone number", e164=e164)
    apply_changes(number, body.changes())
    await session.commit()
    return number


@router.delete(
    "/{e164}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a number",
    responses=_NOT_FOUND,
)
async def delete_number(e164: NumberPath, tenant_id: TenantId, session: Session) -> Response:
    """Stop routing this number to the tenant (calls to it get 'not in service')."""
    number = await get_owned(session, PhoneNumber, tenant_id, "phone number", e164=e164)
    await session.delete(number)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
