"""Typed path and query parameters shared by the admin routes (malformed ids are a 422,
never a database error)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
BIGINT_MAX = 2**63 - 1

ObjectId = Annotated[str, Path(pattern=ID_PATTERN, description="Object id.")]
StaffIdPath = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="Staff id.")]
StaffFilter = Annotated[
    int | None, Query(ge=1, le=BIGINT_MAX, description="Only rows of this staff member.")
]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=BIGINT_MAX, description="Rows to skip.")]
