"""Database helpers of the admin routes: the request's session, tenant-filtered lookups,
commits that turn constraint violations into 409s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.base import Base

Row = TypeVar("Row", bound=Base)


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(_session)]
"""One session per request (shared by the auth dependency and the route)."""


def not_found(what: str) -> HTTPException:
    """The 404 for an id that does not exist *or* belongs to another tenant (same answer)."""
    return HTTPException(status.HTTP_404_NOT_FOUND, f"{what} not found")


def conflict(message: str) -> HTTPException:
    """A 409 with a message saying what clashes."""
    return HTTPException(status.HTTP_409_CONFLICT, message)


def bad_request(message: str) -> HTTPException:
    """A 400 for a body that is well-formed but refers to something unusable."""
    return HTTPException(status.HTTP_400_BAD_REQUEST, message)


def invalid_body(
    field: str, message: str, value: Any, *, where: str = "body"
) -> RequestValidationError:
    """A 422 shaped like FastAPI's own, for checks across fields or against the stored row."""
    return RequestValidationError(
        [{"type": "value_error", "loc": (where, field), "msg": message, "input": value}]
    )


async def find_owned(
    session: AsyncSession, model: type[Row], tenant_id: str, **key: Any
) -> Row | None:
    """The row of `model` with this key that belongs to the tenant, else None."""
    row: Row | None = await session.scalar(select(model).filter_by(tenant_id=tenant_id, **key))
    return row


async def get_owned(
    session: AsyncSession, model: type[Row], tenant_id: str, what: str, **key: Any
) -> Row:
    """Like `find_owned`, but a missing (or foreign) row is a 404."""
    row = await find_owned(session, model, tenant_id, **key)
    if row is None:
        raise not_found(what)
    return row


async def commit_or_conflict(session: AsyncSession, message: str) -> None:
    """Commit; a unique/foreign-key violation (a concurrent writer won) becomes a 409."""
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise conflict(message) from exc


async def flush_or_conflict(session: AsyncSession, message: str) -> None:
    """Flush (to get generated ids); a constraint violation becomes a 409."""
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise conflict(message) from exc


def apply_changes(
    row: Base, changes: dict[str, Any], columns: dict[str, str] | None = None
) -> None:
    """Set each changed API field on the row (`columns` renames API fields to columns)."""
    renames = columns or {}
    for field, value in changes.items():
        setattr(row, renames.get(field, field), value)
