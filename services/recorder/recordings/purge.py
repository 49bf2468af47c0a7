"""Retention: delete recordings older than their tenant's `recording.retention_days`.

Any recorder replica may run it: each batch locks its rows (`FOR UPDATE SKIP LOCKED`), so two
replicas never delete the same recording, and a row is cleared only after its objects are gone
(a purge that dies half-way is finished by the next run)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from obstore.exceptions import BaseError as StoreError
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.models import Call, Tenant
from shared.recordings.store import RecordingStore

log = logging.getLogger(__name__)

BATCH = 200


async def purge_expired(
    sessions: async_sessionmaker[AsyncSession],
    store: RecordingStore,
    now: datetime | None = None,
) -> int:
    """Delete every recording past retention as of `now` (default: the database's now);
    returns how many were deleted."""
    deleted = 0
    while True:
        async with sessions() as session:
            at = now if now is not None else await session.scalar(select(func.now()))
            rows = (
                await session.execute(
                    select(Call.call_sid, Call.tenant_id)
                    .join(Tenant, Tenant.id == Call.tenant_id)
                    .where(
                        Call.recording_key.is_not(None),
                        Call.ended_at
                        < at - func.make_interval(0, 0, 0, Tenant.recording_retention_days),
                    )
                    .limit(BATCH)
                    .with_for_update(of=Call, skip_locked=True)
                )
            ).all()
            if not rows:
                return deleted
            for call_sid, tenant_id in rows:
                await store.delete(tenant_id, call_sid)
            await session.execute(
                update(Call)
                .where(Call.call_sid.in_([sid for sid, _ in rows]))
                .values(
                    recording_key=None,
                    recording_duration_s=None,
                    recording_bytes=None,
                    recording_purged_at=func.now(),
                )
            )
            await session.commit()
            deleted += len(rows)


async def run_purge(
    sessions: async_sessionmaker[AsyncSession],
    store: RecordingStore,
    interval_s: float,
    stop: asyncio.Event,
) -> None:
    """Purge now, then every `interval_s`, until `stop` is set."""
    while not stop.is_set():
        try:
            count = await purge_expired(sessions, store)
            if count:
                log.info("deleted %d recordings past retention", count)
        except (SQLAlchemyError, StoreError, OSError) as exc:  # tried again next interval
            log.warning("recording purge failed: %s", exc)
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except TimeoutError:
            continue
