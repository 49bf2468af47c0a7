"""Run the bench at several concurrencies and tabulate where the machine runs out.

    uv run python -m sim.bench.sweep 20 40 60 80 100 [--profile zero] [--turns 4]

Each run is a full `make bench` run (its JSON and PNG land in bench/results/); the table
adds what a single run does not show: how busy the whole box was (every process we sampled,
in % of one core, averaged over the stretch with >= 80 % of the peak concurrent calls) and
how much of that was FrontDesk's own services.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from sim.bench.runner import BenchOptions, run_bench

HARNESS = frozenset({"sims", "bench (callers)"})
MACHINE = "machine (all processes)"


def busy_pct(report: dict[str, Any]) -> tuple[float, float]:
    """(the whole machine, FrontDesk services + Redis + Postgres) mean CPU in % of one core
    over the stretch with >= 80 % of the peak active calls."""
    ts = report["timeseries"]
    active = list(zip(ts["active_t_s"], ts["active_calls"], strict=True))
    peak = max((n for _, n in active), default=0)
    window = [t for t, n in active if peak and n >= 0.8 * peak]
    if not window:
        return 0.0, 0.0
    lo, hi = min(window), max(window)
    means: dict[str, float] = {}
    for name, proc in ts["processes"].items():
        inside = [p for t, p in zip(proc["t_cpu"], proc["cpu_pct"], strict=True) if lo <= t <= hi]
        means[name] = sum(inside) / len(inside) if inside else 0.0
    machine = means.pop(MACHINE, sum(means.values()))
    platform = sum(v for name, v in means.items() if name not in HARNESS)
    return round(machine, 1), round(platform, 1)


def row(report: dict[str, Any]) -> str:
    m = report["metrics"]

    def pct(key: str, *qs: str) -> str:
        v = m[key]
        return " / ".join(f"{v[q]:.1f}" for q in qs) if "p50" in v else "n/a"

    total, platform = busy_pct(report)
    return (
        f"| {report['meta']['calls']} | {pct('platform_added_ms', 'p50', 'p99')} "
        f"| {pct('voice_to_voice_ms', 'p50', 'p99')} | {pct('greeting_ms', 'p99')} "
        f"| {pct('barge_in_reaction_ms', 'p99')} "
        f"| {m['media_cpu_pct_per_active_call']['value']} | {total} | {platform} "
        f"| {m['errors']['value']} | {m['dropped_frames']['value']} |"
    )


HEADER = (
    "| calls | platform-added p50 / p99 ms | voice-to-voice p50 / p99 ms | greeting p99 ms "
    "| barge-in reaction p99 ms | media % core / call | box CPU % (of 200) "
    "| of which platform | errors | dropped |\n|---|---|---|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sim.bench.sweep", description=__doc__)
    p.add_argument("calls", nargs="+", type=int)
    p.add_argument("--profile", default="zero")
    p.add_argument("--turns", type=int, default=4)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    console = Console()
    rows = []
    for calls in args.calls:
        opts = BenchOptions(calls=calls, profile=args.profile, turns=args.turns)
        if args.out is not None:
            opts.out_dir = args.out
        json_path, _ = run_bench(opts, console)
        rows.append(row(json.loads(json_path.read_text())))
    console.print(HEADER)
    for line in rows:
        console.print(line)


if __name__ == "__main__":
    main()
