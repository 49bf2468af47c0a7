"""Dead letters: stream entries that failed so often (or so surely) that retrying them is
pointless. They are kept with their error for an operator (`frontdesk deadletters`)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base

CALL_SID_CHARS = 64
ERROR_CHARS = 2000


class DeadLetterRow(Base):
    """One entry given up on: where it was, what it held, why it failed."""

    __tablename__ = "dead_letters"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    stream: Mapped[str] = mapped_column(String(200))
    entry_id: Mapped[str] = mapped_column(String(32))
    call_sid: Mapped[str | None] = mapped_column(String(CALL_SID_CHARS), nullable=True, index=True)
    payload: Mapped[str] = mapped_column(Text, doc="The entry's fields as JSON (NULs escaped).")
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="dead", doc="dead | retried")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retried_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (UniqueConstraint("stream", "entry_id"),)

    def fields(self) -> dict[str, str]:
        """The entry's fields as they were on the stream."""
        loaded = json.loads(self.payload)
        return {str(k): str(v) for k, v in loaded.items()}


def printable(text: str, limit: int) -> str:
    """`text` safe for a Postgres text column (no NUL) and at most `limit` characters."""
    return text.replace("\x00", "\\x00")[:limit]


async def store_dead_letter(
    session: AsyncSession,
    *,
    stream: str,
    entry_id: str,
    fields: dict[str, str],
    error: str,
    attempts: int,
    call_sid: str | None = None,
) -> None:
    """Record (or update) a dead letter; the caller commits. Storing one twice (a replica that
    dead-letters an entry another already did) keeps one row with the latest error."""
    values = {
        "call_sid": None if call_sid is None else printable(call_sid, CALL_SID_CHARS),
        # ensure_ascii: a NUL becomes the six characters \u0000, which text columns accept
        "payload": json.dumps(fields, ensure_ascii=True, sort_keys=True),
        "error": printable(error, ERROR_CHARS),
        "attempts": attempts,
        "status": "dead",
    }
    await session.execute(
        insert(DeadLetterRow)
        .values(stream=printable(stream, 200), entry_id=entry_id[:32], **values)
        .on_conflict_do_update(index_elements=["stream", "entry_id"], set_=values)
    )
