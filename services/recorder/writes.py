"""Several independent writes of a batch in one statement (one round trip).

Each `Write` is one INSERT or UPDATE whose parameter names are unique within the batch; more than
one are run as data-modifying CTEs of a single statement. They must touch different rows (CTEs
do not see each other's effects), which holds for what a batch writes at its end: one upsert per
turn, the transcript lines, the usage records, and the `calls` row.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class Write:
    """One statement's SQL (built from fixed pieces, never from data) and its parameters."""

    sql: str
    params: dict[str, Any]


@functools.lru_cache(maxsize=2048)
def statement(sql: str) -> TextClause:
    """A text clause per distinct SQL text (parsed once)."""
    return text(sql)


async def execute(session: AsyncSession, writes: list[Write]) -> None:
    """Run `writes` in one statement."""
    if not writes:
        return
    if len(writes) == 1:
        sql = writes[0].sql
    else:
        sql = "WITH " + ", ".join(f"w{i} AS ({w.sql})" for i, w in enumerate(writes))
        sql += " SELECT 1"
    params: dict[str, Any] = {}
    for write in writes:
        params.update(write.params)
    await session.execute(statement(sql), params)
