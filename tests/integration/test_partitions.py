"""Postgres at volume (issue 18): call_events and transcript_lines partitioned by month.

Migration 0009 on a database that already holds calls (rows copied into partitions, ids and
keys kept) and back; the recorder's partition job creating months ahead (moving rows the
default partition caught) and, with a retention, dropping whole partitions instead of
deleting rows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest_asyncio
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.engine import make_engine, make_sessions
from shared.db.migrate import alembic_config, upgrade
from shared.db.partitions import maintain, partitions_of
from tests.conftest import Infra, migrated_database

MONTHS = [datetime(2025, 1, 17, 9, tzinfo=UTC), datetime(2025, 3, 2, 23, 59, tzinfo=UTC)]


async def seed_call(engine: AsyncEngine, sid: str, ats: list[datetime]) -> None:
    """A call with one call_events row and one transcript line per time in `ats`."""
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO calls (call_sid, from_number, to_number, direction, pipeline, "
                 "status, started_at, last_entry_id) VALUES (:sid, '+1', '+2', 'inbound', "
                 "'cascade', 'completed', :at, '0-0')"),
            {"sid": sid, "at": ats[0]},
        )
        for n, at in enumerate(ats):
            params = {"sid": sid, "e": f"{n + 1}-0", "at": at}
            await conn.execute(
                text("INSERT INTO call_events (call_sid, entry_id, type, at, payload) "
                     "VALUES (:sid, :e, 'transcript.final', :at, CAST(:p AS jsonb))"),
                params | {"p": json.dumps({"n": n})},
            )
            await conn.execute(
                text("INSERT INTO transcript_lines (call_sid, entry_id, turn_id, role, text, "
                     "at) VALUES (:sid, :e, 1, 'caller', 'a haircut please', :at)"),
                params,
            )


async def rows(engine: AsyncEngine, table: str) -> list[tuple[int, str, str]]:
    """(id, entry_id, partition) of every row of `table`."""
    async with engine.connect() as conn:
        result = await conn.execute(
            text(f"SELECT id, entry_id, tableoid::regclass::text FROM {table} ORDER BY id")
        )
        return [(int(r[0]), str(r[1]), str(r[2])) for r in result]


async def is_partitioned(engine: AsyncEngine, table: str) -> bool:
    async with engine.connect() as conn:
        found = await conn.scalar(
            text("SELECT count(*) FROM pg_partitioned_table WHERE partrelid = "
                 "CAST(:t AS regclass)"),
            {"t": table},
        )
    return bool(found)


@asynccontextmanager
async def database(infra: Infra, revision: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A new database migrated to `revision` (Alembic runs its own loop: in a thread)."""
    made = migrated_database(infra.database_url, revision)
    url = await asyncio.to_thread(made.__enter__)
    engine = make_engine(url)
    try:
        yield url, engine
    finally:
        await engine.dispose()
        await asyncio.to_thread(made.__exit__, None, None, None)


@pytest_asyncio.fixture
async def old_schema(infra: Infra) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A database at revision 0007 (before partitioning)."""
    async with database(infra, "0007") as made:
        yield made


async def test_upgrade_copies_rows_into_month_partitions_and_downgrade_restores(
    old_schema: tuple[str, AsyncEngine],
) -> None:
    url, engine = old_schema
    now = datetime.now(UTC)
    await seed_call(engine, "CAold", [*MONTHS, now])
    before = {t: await rows(engine, t) for t in ("call_events", "transcript_lines")}
    assert not await is_partitioned(engine, "call_events")

    await asyncio.to_thread(upgrade, url)
    await engine.dispose()
    for table in ("call_events", "transcript_lines"):
        assert await is_partitioned(engine, table)
        after = await rows(engine, table)
        assert [(i, e) for i, e, _ in after] == [(i, e) for i, e, _ in before[table]]
        assert [p for _, _, p in after] == [
            f"{table}_p2025_01",
            f"{table}_p2025_03",
            f"{table}_p{now:%Y_%m}",
        ]
        names = set(await partitions(engine, table))
        assert {f"{table}_default", f"{table}_p2025_02"} <= names  # every month in between
    # the keys still make the recorder's writes idempotent, and ids go on from the old ones
    async with engine.begin() as conn:
        again = await conn.execute(
            text("INSERT INTO call_events (call_sid, entry_id, type, at, payload) VALUES "
                 "('CAold', '1-0', 'x', :at, '{}') ON CONFLICT (call_sid, entry_id, at) "
                 "DO NOTHING RETURNING id"),
            {"at": MONTHS[0]},
        )
        assert again.first() is None
        new_id = await conn.scalar(
            text("INSERT INTO call_events (call_sid, entry_id, type, at, payload) VALUES "
                 "('CAold', '9-0', 'x', now(), '{}') RETURNING id")
        )
    assert new_id > max(i for i, _, _ in before["call_events"])
    # full-text search over the partitioned transcript still uses its generated column
    async with engine.connect() as conn:
        hits = await conn.scalar(
            text("SELECT count(*) FROM transcript_lines WHERE tsv @@ to_tsquery('haircut')")
        )
    assert hits == 3

    await asyncio.to_thread(command.downgrade, alembic_config(url), "0007")
    await engine.dispose()
    for table in ("call_events", "transcript_lines"):
        assert not await is_partitioned(engine, table)
        kept = [(i, e) for i, e, _ in await rows(engine, table)]
        assert kept[: len(before[table])] == [(i, e) for i, e, _ in before[table]]
    async with engine.connect() as conn:
        unique = await conn.scalar(
            text("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                 "WHERE conname = 'call_events_call_sid_entry_id_key'")
        )
    assert unique == "UNIQUE (call_sid, entry_id)"
    await asyncio.to_thread(upgrade, url)  # and up again
    await engine.dispose()
    assert await is_partitioned(engine, "call_events")


async def partitions(engine: AsyncEngine, table: str) -> list[str]:
    async with make_sessions(engine)() as session:
        return await partitions_of(session, table)


@pytest_asyncio.fixture
async def partitioned(infra: Infra) -> AsyncIterator[AsyncEngine]:
    async with database(infra, "head") as (_, engine):
        yield engine


async def test_the_job_creates_months_ahead_and_moves_rows_out_of_the_default(
    partitioned: AsyncEngine,
) -> None:
    far = datetime(2031, 5, 20, tzinfo=UTC)
    await seed_call(partitioned, "CAfar", [far])  # no partition yet: the default takes it
    assert [p for _, _, p in await rows(partitioned, "call_events")] == ["call_events_default"]

    done = await maintain(make_sessions(partitioned), datetime(2031, 4, 30, tzinfo=UTC), 2, 0)
    assert done is not None
    assert sorted(done.created) == sorted(
        f"{t}_p2031_{m:02d}" for t in ("call_events", "transcript_lines") for m in (4, 5, 6)
    )
    for table in ("call_events", "transcript_lines"):
        assert [p for _, _, p in await rows(partitioned, table)] == [f"{table}_p2031_05"]
    again = await maintain(make_sessions(partitioned), datetime(2031, 4, 30, tzinfo=UTC), 2, 0)
    assert again is not None and again.created == []  # idempotent


async def test_retention_drops_whole_partitions_and_old_calls(partitioned: AsyncEngine) -> None:
    now = datetime.now(UTC)
    sessions = make_sessions(partitioned)
    old = datetime(2024, 2, 10, tzinfo=UTC)
    await maintain(sessions, old, 0, 0)  # February 2024 gets its partition
    await seed_call(partitioned, "CAancient", [old])
    await seed_call(partitioned, "CArecent", [now])

    done = await maintain(sessions, now, 1, retention_months=6)
    assert done is not None
    assert {"call_events_p2024_02", "transcript_lines_p2024_02"} <= set(done.dropped)
    assert done.calls_deleted == 1
    for table in ("call_events", "transcript_lines"):
        assert f"{table}_p2024_02" not in await partitions(partitioned, table)
        assert {e for _, e, _ in await rows(partitioned, table)} == {"1-0"}
    async with partitioned.connect() as conn:
        left = (await conn.execute(text("SELECT call_sid FROM calls"))).scalars().all()
        facts = (await conn.execute(text("SELECT count(*) FROM v_call_facts"))).scalar()
    assert left == ["CArecent"]
    assert facts == 1  # the analyst views read the partitioned tables as before
