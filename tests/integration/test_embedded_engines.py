"""With no URLs configured, FrontDesk starts embedded Redis and Postgres (DESIGN §7)."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg

from shared.bus.streams import connect
from shared.db.migrate import upgrade
from shared.runtime.embedded import ensure
from tests.conftest import server_dir


async def test_embedded_redis_and_postgres_start_migrate_and_stop() -> None:
    directory = server_dir("frontdesk-embedded-")
    embedded = ensure(None, None, str(directory))
    try:
        assert embedded.redis_url.startswith("unix://")
        redis = connect(embedded.redis_url)
        entry = await redis.xadd("probe", {"a": "1"})
        assert await redis.xrange("probe") == [(entry, {"a": "1"})]
        await redis.aclose()

        upgrade(embedded.database_url)
        conn = await asyncpg.connect(embedded.database_url)
        try:
            tables = {
                r["tablename"]
                for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            }
        finally:
            await conn.close()
        assert {
            "tenants",
            "calls",
            "call_events",
            "transcript_lines",
            "turns",
            "tool_invocations",
            "alembic_version",
        } <= tables
    finally:
        embedded.stop()
        shutil.rmtree(directory, ignore_errors=True)


async def test_configured_urls_are_used_as_given(tmp_path: Path) -> None:
    embedded = ensure("redis://example:6379/0", "postgresql://u@example/db", str(tmp_path))
    assert (embedded.redis_url, embedded.database_url) == (
        "redis://example:6379/0",
        "postgresql://u@example/db",
    )
    assert not any(tmp_path.iterdir())
