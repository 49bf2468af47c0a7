"""What a call-minute leaves in Postgres: rows and bytes per table, per call-minute served.

    uv run python -m sim.bench.pg_volume [--embedded-dir .frontdesk/bench] [--database-url URL]

Reads the bench's database after runs (every call in it came from the bench): per per-call
table, its rows, the bytes of those rows (sum of pg_column_size, heap only) and the table's
whole on-disk size with indexes and partitions, each divided by the call-minutes stored in
`calls.duration_s`. docs/scaling.md sizes Postgres from these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import asyncpg

from shared.runtime.embedded import ensure

TABLES = (
    "calls", "call_events", "transcript_lines", "turns", "tool_invocations", "barge_ins",
    "usage_records", "call_costs", "cost_line_items", "call_analysis", "webhook_deliveries",
)


async def volume(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        calls, seconds = await conn.fetchrow(
            "SELECT count(*), coalesce(sum(duration_s), 0) FROM calls WHERE duration_s IS NOT NULL"
        )
        minutes = float(seconds) / 60
        tables: dict[str, dict[str, float]] = {}
        for table in TABLES:
            rows, row_bytes = await conn.fetchrow(
                f"SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) FROM {table} t"
            )
            disk = await conn.fetchval(  # a plain table has no partition tree: its own size
                "SELECT coalesce((SELECT sum(pg_total_relation_size(relid))"
                " FROM pg_partition_tree($1::regclass)), pg_total_relation_size($1::regclass))",
                table,
            )
            tables[table] = {
                "rows": int(rows),
                "rows_per_call_minute": round(int(rows) / minutes, 2) if minutes else 0.0,
                "row_bytes_per_call_minute": round(int(row_bytes) / minutes) if minutes else 0,
                "disk_bytes_per_call_minute": round(int(disk) / minutes) if minutes else 0,
            }
        by_type = await conn.fetch(
            "SELECT type, count(*) AS n, sum(pg_column_size(payload)) AS b FROM call_events"
            " GROUP BY type ORDER BY n DESC LIMIT 12"
        )
    finally:
        await conn.close()
    event_types = {
        r["type"]: {"rows_per_call_minute": round(r["n"] / minutes, 2) if minutes else 0.0,
                    "payload_bytes_per_row": round(r["b"] / r["n"]) if r["n"] else 0}
        for r in by_type
    }
    total = {
        key: round(sum(t[key] for t in tables.values()), 2)
        for key in ("rows_per_call_minute", "row_bytes_per_call_minute",
                    "disk_bytes_per_call_minute")
    }
    return {"calls": int(calls), "call_minutes": round(minutes, 2), "tables": tables,
            "total": total, "call_events_by_type": event_types}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sim.bench.pg_volume", description=__doc__)
    p.add_argument("--embedded-dir", default=".frontdesk/bench")
    p.add_argument("--database-url", default=None)
    args = p.parse_args(argv)
    embedded = ensure("unused", args.database_url, args.embedded_dir)
    try:
        dsn = embedded.database_url.replace("postgresql+asyncpg://", "postgresql://")
        print(json.dumps(asyncio.run(volume(dsn)), indent=2))
    finally:
        embedded.stop()


if __name__ == "__main__":
    main()
