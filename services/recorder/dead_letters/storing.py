"""Store a call's batches; an entry that can never be stored goes to the dead letters.

A batch that fails with anything but a connection error is split: each entry is stored on its
own, up to `attempts` times, and one that still fails is written to `dead_letters` with its
error (the call's cursor moves past it), so the rest of the call is recorded. Connection
errors propagate: the caller waits the outage out and follows the call again from its cursor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.recorder.memory import LogMemory
from services.recorder.persist import persist
from shared.bus.mux import Entry
from shared.bus.streams import stream_id
from shared.contract import events as ev
from shared.contract.events import encode
from shared.db.dead_letters import store_dead_letter
from shared.runtime.outage import is_transient

log = logging.getLogger(__name__)

ADVANCE_CURSOR = text(
    """
    UPDATE calls SET last_entry_id = :entry_id
    WHERE call_sid = :call_sid
      AND (split_part(last_entry_id, '-', 1)::bigint, split_part(last_entry_id, '-', 2)::bigint)
          < (:ms, :seq)
    """
)


@dataclass
class CallWriter:
    """Writes one followed call's entries, in log order, batch by batch."""

    sessions: async_sessionmaker[AsyncSession]
    call_sid: str
    stream: str
    attempts: int
    memory: LogMemory
    dead_lettered: list[str] = field(default_factory=list)

    async def store(self, batch: list[Entry]) -> bool:
        """Store `batch`; True if it held call.ended (stored or dead-lettered)."""
        try:
            return await self._commit(batch)
        except Exception as exc:
            if is_transient(exc) or len(batch) == 0:
                raise
            log.warning(
                "batch of %d entries failed (%s); storing them one by one",
                len(batch),
                type(exc).__name__,
                extra={"call_sid": self.call_sid},
            )
        ended = False
        for entry in batch:
            ended = await self._store_one(entry) or ended
        return ended

    async def _commit(self, batch: list[Entry]) -> bool:
        memory = self.memory
        try:
            async with self.sessions() as session:
                ended = await persist(session, self.call_sid, batch, memory)
                await session.commit()
        except Exception:
            # what the failed transaction derived is not durable: forget it, and look up
            # what precedes the next entry in Postgres instead
            self.memory = LogMemory(self.call_sid)
            raise
        memory.committed()
        return ended

    async def _store_one(self, entry: Entry) -> bool:
        error: Exception | None = None
        for _ in range(self.attempts):
            try:
                return await self._commit([entry])
            except Exception as exc:
                if is_transient(exc):
                    raise
                error = exc
        assert error is not None
        await self._dead_letter(entry, error)
        return isinstance(entry[1], ev.CallEnded)

    async def _dead_letter(self, entry: Entry, error: Exception) -> None:
        entry_id, event = entry
        ms, seq = stream_id(entry_id)
        async with self.sessions() as session:
            await store_dead_letter(
                session,
                stream=self.stream,
                entry_id=entry_id,
                fields=encode(event),
                error=f"{type(error).__name__}: {error}",
                attempts=self.attempts,
                call_sid=self.call_sid,
            )
            await session.execute(
                ADVANCE_CURSOR,
                {"call_sid": self.call_sid, "entry_id": entry_id, "ms": ms, "seq": seq},
            )
            await session.commit()
        self.dead_lettered.append(entry_id)
        log.error(
            "call-log entry dead-lettered",
            extra={"call_sid": self.call_sid, "entry": entry_id, "type": event.type},
        )
