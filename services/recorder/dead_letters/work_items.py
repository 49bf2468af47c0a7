"""The recorder's `fd:calls` work items: what a well-formed one looks like, and where one that
can never be handled goes (the `dead_letters` table)."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bus.work_queue import DeadLetter, DeadLetterSink, PoisonItem
from shared.db.dead_letters import store_dead_letter

CALL_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What a CallSid can be here (Twilio's are CA + 32 hex digits; simulators use similar)."""
TELEPHONY_USAGE = "usage.telephony"
"""`fd:calls` work item the gateway adds when Twilio reports a call's duration."""
KINDS = frozenset({"call.started", "call.ended", TELEPHONY_USAGE})


def checked(fields: dict[str, str]) -> tuple[str, str]:
    """(kind, call sid) of a work item; `PoisonItem` if it can never be handled."""
    kind = fields.get("type", "")
    call_sid = fields.get("call_sid", "")
    if kind not in KINDS:
        raise PoisonItem(f"unknown work item type {kind[:40]!r}")
    if not CALL_SID.fullmatch(call_sid):
        raise PoisonItem(f"malformed call_sid ({len(call_sid)} characters)")
    return kind, call_sid


def dead_letter_sink(sessions: async_sessionmaker[AsyncSession]) -> DeadLetterSink:
    """Stores dead work items in Postgres."""

    async def sink(item: DeadLetter) -> None:
        async with sessions() as session:
            await store_dead_letter(
                session,
                stream=item.stream,
                entry_id=item.entry_id,
                fields=item.fields,
                error=item.error,
                attempts=item.attempts,
                call_sid=item.fields.get("call_sid"),
            )
            await session.commit()

    return sink
