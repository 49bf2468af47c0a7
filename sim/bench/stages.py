"""Platform-added time per stage for bench runs, from the `turns` rows the recorder stored.

    uv run python -m sim.bench.stages bench/results/bench-zero-20calls-*.json ...

For each report: p50 / p95 ms of stt_final -> llm_request -> first token -> first speakable
-> TTS first byte -> first frame sent, over the caller turns of the calls that started during
that run (run against the database the run used: DATABASE_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

from shared.runtime.settings import get_settings

STAGES = (
    ("stt_final_at", "llm_request_at", "stt_final -> llm_request"),
    ("llm_request_at", "llm_first_token_at", "llm_request -> first token"),
    ("llm_first_token_at", "first_speakable_at", "first token -> speakable"),
    ("first_speakable_at", "tts_first_byte_at", "speakable -> TTS first byte"),
    ("tts_first_byte_at", "first_audio_sent_at", "TTS first byte -> sent"),
)


def _query() -> str:
    gaps = ", ".join(
        f"extract(epoch from ({b} - {a})) * 1000 AS g{i}" for i, (a, b, _) in enumerate(STAGES)
    )
    pcts = ", ".join(
        f"percentile_cont({q}) WITHIN GROUP (ORDER BY g{i}) AS g{i}_{int(q * 100)}"
        for i in range(len(STAGES))
        for q in (0.5, 0.95)
    )
    return (
        f"WITH t AS (SELECT {gaps} FROM turns JOIN calls USING (call_sid) "
        "WHERE calls.started_at BETWEEN $1 AND $2 AND turn_id > 0 "
        "AND stt_final_at IS NOT NULL AND first_audio_sent_at IS NOT NULL) "
        f"SELECT count(*) AS n, {pcts} FROM t"
    )


async def _table(reports: list[Path], database_url: str) -> None:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        print("| calls | " + " | ".join(label for _, _, label in STAGES) + " |")
        print("|---" * (len(STAGES) + 1) + "|")
        for path in reports:
            meta = json.loads(path.read_text())["meta"]
            end = datetime.fromisoformat(meta["started_at"])
            start = end - timedelta(seconds=meta["wall_s"] + meta["ramp_s"] + 15)
            row = await conn.fetchrow(_query(), start, end)
            if row is None or not row["n"]:
                print(f"| {meta['calls']} | no stored turns in that window |")
                continue
            cells = [f"{row[f'g{i}_50']:.1f} / {row[f'g{i}_95']:.1f}" for i in range(len(STAGES))]
            print(f"| {meta['calls']} (n={row['n']}) | " + " | ".join(cells) + " |")
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sim.bench.stages", description=__doc__)
    p.add_argument("reports", nargs="+", type=Path)
    args = p.parse_args(argv)
    asyncio.run(_table(args.reports, get_settings().database_url))


if __name__ == "__main__":
    main()
