"""The recorder's insert rate into `call_events`: partitioned (migration 0009) against the plain
table of revision 0007, side by side in one run.

Two fresh databases on one server, one at revision 0007 (plain table, today's before issue 18)
and one at head (monthly partitions). Each round runs the recorder's own raw-entry statement
(`services.recorder.persist.INSERT_EVENTS`: cursor advance + multi-row insert with ON CONFLICT
DO NOTHING RETURNING) from `--writers` concurrent sessions, each writing `--batch`-entry
batches to its calls, until `--rows` rows are in, once per schema (the order alternates per
round so a noisy neighbour hurts both alike). On the plain table the conflict target is the
old `(call_sid, entry_id)`: the statement is otherwise byte for byte the same. Reports rows/s
per round and the median, and this process's CPU per 1000 rows.

    uv run python -m sim.bench.partition_inserts --rounds 5 --rows 60000

Uses DATABASE_URL (default: the local server); creates and drops its own databases.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.recorder.persist import INSERT_EVENTS
from shared.db.engine import make_engine, make_sessions
from shared.db.migrate import upgrade

SCHEMAS = {"plain (0007)": "0007", "partitioned (0009)": "head"}
PAYLOAD = json.dumps({"type": "transcript.interim", "text": "I'd like a haircut on Friday" * 2})


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def statement(revision: str) -> Any:
    """The recorder's statement for the schema at `revision`."""
    if revision == "head":
        return INSERT_EVENTS
    return text(INSERT_EVENTS.text.replace("(call_sid, entry_id, at)", "(call_sid, entry_id)"))


async def make_calls(engine: AsyncEngine, prefix: str, count: int) -> list[str]:
    sids = [f"CA{prefix}{n:06d}" for n in range(count)]
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO calls (call_sid, from_number, to_number, direction, pipeline, status,"
                " started_at, last_entry_id) SELECT s, '+1', '+2', 'inbound', 'cascade',"
                " 'in-progress', now(), '0-0' FROM unnest(CAST(:sids AS text[])) AS s"
            ),
            {"sids": sids},
        )
    return sids


async def insert_rows(engine: AsyncEngine, revision: str, args: argparse.Namespace) -> float:
    """Write `args.rows` rows with `args.writers` sessions; rows per second."""
    sessions = make_sessions(engine)
    sql = statement(revision)
    per_writer = args.rows // args.writers
    sids = await make_calls(engine, uuid.uuid4().hex[:8], args.writers * args.calls_per_writer)
    base = datetime.now(UTC)

    async def writer(index: int) -> None:
        mine = sids[index * args.calls_per_writer : (index + 1) * args.calls_per_writer]
        seq = 0
        written = 0
        while written < per_writer:
            sid = mine[seq % len(mine)]
            ms = 1_700_000_000_000 + seq
            entry_ids = [f"{ms}-{k}" for k in range(args.batch)]
            at = base + timedelta(milliseconds=seq)
            async with sessions() as session, session.begin():
                await session.execute(
                    sql,
                    {
                        "call_sid": sid,
                        "last_entry_id": entry_ids[-1],
                        "last_ms": ms,
                        "last_seq": args.batch - 1,
                        "entry_ids": entry_ids,
                        "types": ["transcript.interim"] * args.batch,
                        "ats": [at] * args.batch,
                        "payloads": [PAYLOAD] * args.batch,
                    },
                )
            seq += 1
            written += args.batch

    start = time.perf_counter()
    await asyncio.gather(*(writer(i) for i in range(args.writers)))
    return per_writer * args.writers / (time.perf_counter() - start)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    server = args.database_url
    names = {label: f"fd_bench_parts_{uuid.uuid4().hex[:8]}" for label in SCHEMAS}
    admin = await asyncpg.connect(server.replace("postgresql+asyncpg://", "postgresql://"))
    engines: dict[str, AsyncEngine] = {}
    rates: dict[str, list[float]] = {label: [] for label in SCHEMAS}
    cpu: dict[str, float] = dict.fromkeys(SCHEMAS, 0.0)
    try:
        for label, name in names.items():
            await admin.execute(f'CREATE DATABASE "{name}"')
            await asyncio.to_thread(upgrade, _with_db(server, name), SCHEMAS[label])
            engines[label] = make_engine(_with_db(server, name), pool_size=args.writers)
        for round_no in range(args.rounds):
            order = list(SCHEMAS) if round_no % 2 == 0 else list(reversed(SCHEMAS))
            for label in order:
                before = time.process_time()
                rates[label].append(await insert_rows(engines[label], SCHEMAS[label], args))
                cpu[label] += time.process_time() - before
    finally:
        for engine in engines.values():
            await engine.dispose()
        for name in names.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    total_rows = args.rows // args.writers * args.writers * args.rounds
    return {
        "rows_per_round": args.rows,
        "writers": args.writers,
        "batch": args.batch,
        "rounds": args.rounds,
        "schemas": {
            label: {
                "rows_per_s": [round(r) for r in rates[label]],
                "median_rows_per_s": round(statistics.median(rates[label])),
                "client_cpu_ms_per_1000_rows": round(cpu[label] / total_rows * 1e6, 1),
            }
            for label in SCHEMAS
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=60000, help="rows per schema per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writers", type=int, default=4, help="concurrent sessions")
    parser.add_argument("--batch", type=int, default=20, help="entries per statement")
    parser.add_argument("--calls-per-writer", type=int, default=25)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
