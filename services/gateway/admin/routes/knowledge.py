"""`/v1/knowledge`: the tenant's FAQ, which the agent answers from."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import select

from services.gateway.admin.auth import TenantId
from services.gateway.admin.params import ObjectId
from services.gateway.admin.schemas import (
    AUTH_ERRORS,
    KnowledgeIn,
    KnowledgeOut,
    KnowledgePatch,
    error_doc,
)
from services.gateway.admin.store import Session, apply_changes, get_owned
from shared.db.models import KnowledgeItem

router = APIRouter(
    prefix="/v1/knowledge",
    tags=["knowledge"],
    responses=AUTH_ERRORS,
)
_NOT_FOUND = error_doc(404, "No such item in this tenant.")
_WHAT = "knowledge item"


@router.get("", response_model=list[KnowledgeOut], summary="List knowledge items")
async def list_knowledge(tenant_id: TenantId, session: Session) -> list[KnowledgeItem]:
    """Every FAQ entry of this tenant."""
    rows = await session.scalars(
        select(KnowledgeItem)
        .where(KnowledgeItem.tenant_id == tenant_id)
        .order_by(KnowledgeItem.question, KnowledgeItem.id)
    )
    return list(rows)


@router.post(
    "",
    response_model=KnowledgeOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a knowledge item",
)
async def create_knowledge(
    body: KnowledgeIn, tenant_id: TenantId, session: Session
) -> KnowledgeItem:
    """Add a question and its answer."""
    item = KnowledgeItem(tenant_id=tenant_id, **body.model_dump())
    session.add(item)
    await session.commit()
    return item


@router.get(
    "/{item_id}", response_model=KnowledgeOut, summary="Get a knowledge item", responses=_NOT_FOUND
)
async def get_knowledge(item_id: ObjectId, tenant_id: TenantId, session: Session) -> KnowledgeItem:
    """One FAQ entry."""
    return await get_owned(session, KnowledgeItem, tenant_id, _WHAT, id=item_id)


@router.patch(
    "/{item_id}",
    response_model=KnowledgeOut,
    summary="Update a knowledge item",
    responses=_NOT_FOUND,
)
async def patch_knowledge(
    item_id: ObjectId, body: KnowledgePatch, tenant_id: TenantId, session: Session
) -> KnowledgeItem:
    """Change the question or the answer."""
    item = await get_owned(session, KnowledgeItem, tenant_id, _WHAT, id=item_id)
    apply_changes(item, body.changes())
    await session.commit()
    return item


@router.delete(
    "/{item_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a knowledge item",
    responses=_NOT_FOUND,
)
async def delete_knowledge(item_id: ObjectId, tenant_id: TenantId, session: Session) -> Response:
    """Remove an FAQ entry."""
    item = await get_owned(session, KnowledgeItem, tenant_id, _WHAT, id=item_id)
    await session.delete(item)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
