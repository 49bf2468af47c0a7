"""`/v1/messages`: messages callers left; marking one read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from services.gateway.admin.activity_schemas import MessageOut
from services.gateway.admin.auth import TenantId
from services.gateway.admin.params import Limit, ObjectId, Offset
from services.gateway.admin.schemas import AUTH_ERRORS, error_doc
from services.gateway.admin.store import Session, get_owned
from shared.db.models import Message

router = APIRouter(
    prefix="/v1/messages",
    tags=["messages"],
    responses=AUTH_ERRORS,
)
ReadFilter = Annotated[
    bool | None, Query(description="true: only read messages; false: only unread ones.")
]


@router.get("", response_model=list[MessageOut], summary="List messages")
async def list_messages(
    tenant_id: TenantId,
    session: Session,
    read: ReadFilter = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[Message]:
    """Messages, newest first."""
    query = select(Message).where(Message.tenant_id == tenant_id)
    if read is not None:
        query = query.where(Message.read == read)
    rows = await session.scalars(
        query.order_by(Message.created_at.desc(), Message.id).limit(limit).offset(offset)
    )
    return list(rows)


@router.get(
    "/{message_id}",
    response_model=MessageOut,
    summary="Get a message",
    responses=error_doc(404, "No such message in this tenant."),
)
async def get_message(message_id: ObjectId, tenant_id: TenantId, session: Session) -> Message:
    """One message."""
    return await get_owned(session, Message, tenant_id, "message", id=message_id)


@router.post(
    "/{message_id}/read",
    response_model=MessageOut,
    summary="Mark a message read",
    responses=error_doc(404, "No such message in this tenant."),
)
async def mark_read(message_id: ObjectId, tenant_id: TenantId, session: Session) -> Message:
    """Mark a message read (marking it again changes nothing)."""
    message = await get_owned(session, Message, tenant_id, "message", id=message_id)
    message.read = True
    await session.commit()
    return message
