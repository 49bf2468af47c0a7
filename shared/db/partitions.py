"""Monthly partitions of the per-call append tables, made ahead and dropped past retention.

`call_events` and `transcript_lines` are range-partitioned by month on `at` (migration 0009):
`<table>_pYYYY_MM` per UTC month plus `<table>_default`, which catches rows of a month without
a partition so an insert never fails. The job below (run by every recorder replica; a
Postgres advisory lock lets one work at a time) creates the partitions of this month and the
next `ahead` months with the database function `fd_month_partition` (which moves any rows of
that month out of the default partition first). With a retention set, it drops every monthly
partition whose month ended before the cutoff, removes the default partition's rows older
than the cutoff, then deletes the `calls` rows started before it (their turns, DTMF and
barge-ins go with them by ON DELETE CASCADE). `calls` stays unpartitioned: see
docs/postgres-partitions.md.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.runtime.outage import sleep_unless

log = logging.getLogger(__name__)

PARTITIONED = ("call_events", "transcript_lines")
"""The per-call append tables partitioned by month on `at`."""
LOCK_ID = 0x46445061  # "FDPa": one partition job at a time across recorder replicas
CALLS_DELETE_BATCH = 5000


@dataclass
class Maintenance:
    """What one pass of the job did."""

    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    default_rows_deleted: int = 0
    calls_deleted: int = 0


def month_start(moment: datetime, plus: int = 0) -> datetime:
    """The first instant (UTC) of `moment`'s month, `plus` months later."""
    index = moment.astimezone(UTC).year * 12 + moment.astimezone(UTC).month - 1 + plus
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_month(table: str, child: str) -> datetime | None:
    """The month a partition of `table` holds, from its name; None for any other table."""
    match = re.fullmatch(rf"{re.escape(table)}_p(\d{{4}})_(\d{{2}})", child)
    if match is None:
        return None
    return datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)


async def partitions_of(session: AsyncSession, table: str) -> list[str]:
    """The partitions attached to `table`, by name."""
    rows = await session.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:t AS regclass) ORDER BY c.relname"
        ),
        {"t": table},
    )
    return [str(name) for name in rows.scalars()]


async def ensure_ahead(session: AsyncSession, now: datetime, ahead: int) -> list[str]:
    """Create the partitions of `now`'s month and the `ahead` next ones; the new ones."""
    created: list[str] = []
    for table in PARTITIONED:
        existing = set(await partitions_of(session, table))
        for plus in range(ahead + 1):
            child = await session.scalar(
                text("SELECT fd_month_partition(:t, :m)"),
                {"t": table, "m": month_start(now, plus)},
            )
            if child not in existing:
                created.append(str(child))
    return created


async def drop_before(session: AsyncSession, cutoff: datetime, done: Maintenance) -> None:
    """Drop the monthly partitions that end at or before `cutoff`, the default partition's
    rows older than it, and the calls started before it (their other rows cascade)."""
    for table in PARTITIONED:
        for child in await partitions_of(session, table):
            month = partition_month(table, child)
            if month is not None and month_start(month, 1) <= cutoff:
                await session.execute(text(f'DROP TABLE "{child}"'))
                done.dropped.append(child)
        removed = await session.execute(
            text(f'DELETE FROM "{table}_default" WHERE at < :cutoff'), {"cutoff": cutoff}
        )
        done.default_rows_deleted += int(getattr(removed, "rowcount", 0) or 0)
    while True:
        removed = await session.execute(
            text(
                "DELETE FROM calls WHERE call_sid IN (SELECT call_sid FROM calls "
                "WHERE started_at < :cutoff LIMIT :n)"
            ),
            {"cutoff": cutoff, "n": CALLS_DELETE_BATCH},
        )
        count = int(getattr(removed, "rowcount", 0) or 0)
        done.calls_deleted += count
        if count < CALLS_DELETE_BATCH:
            return


async def maintain(
    sessions: async_sessionmaker[AsyncSession],
    now: datetime,
    ahead_months: int,
    retention_months: int,
) -> Maintenance | None:
    """One pass: partitions ahead, then retention (0 months: keep everything). None when
    another replica holds the job's lock."""
    done = Maintenance()
    async with sessions() as session, session.begin():
        lock = text("SELECT pg_try_advisory_xact_lock(:id)")
        locked = await session.scalar(lock, {"id": LOCK_ID})
        if not locked:
            return None
        done.created = await ensure_ahead(session, now, ahead_months)
        if retention_months > 0:
            await drop_before(session, month_start(now, -retention_months), done)
    return done


async def run_partition_job(
    sessions: async_sessionmaker[AsyncSession],
    *,
    every_s: float,
    ahead_months: int,
    retention_months: int,
    stop: asyncio.Event,
) -> None:
    """Run `maintain` now and every `every_s` until `stop`; a failed pass is logged and
    tried again at the next interval (the default partition takes rows meanwhile)."""
    while True:
        try:
            done = await maintain(sessions, datetime.now(UTC), ahead_months, retention_months)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("partition job failed, retrying in %.0f s: %s", every_s, exc)
        else:
            if done and (done.created or done.dropped or done.calls_deleted):
                log.info(
                    "partitions: created %s, dropped %s, %d old calls deleted",
                    done.created,
                    done.dropped,
                    done.calls_deleted,
                )
        if await sleep_unless(stop, every_s):
            return
