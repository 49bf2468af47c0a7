"""`python -m sim.bench`: run the benchmark (see docs/bench.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from sim.bench.profiles import PROFILES
from sim.bench.runner import MAX_CALLS, BenchOptions, run_bench


def parse(argv: list[str] | None = None) -> BenchOptions:
    p = argparse.ArgumentParser(prog="python -m sim.bench", description=__doc__)
    p.add_argument("--calls", type=int, default=100, help=f"concurrent calls (1..{MAX_CALLS})")
    p.add_argument("--profile", default="zero", choices=sorted(PROFILES))
    p.add_argument("--turns", type=int, default=4, help="caller turns per call (>= 3)")
    p.add_argument("--out", type=Path, default=None, help="directory for the JSON and PNG")
    p.add_argument("--ramp-s", type=float, default=None, help="spread call starts over this")
    p.add_argument("--barge-after-ms", type=int, default=1500)
    p.add_argument("--no-warmup", action="store_true", help="skip the unmeasured first call")
    p.add_argument("--embedded-dir", type=Path, default=None)
    a = p.parse_args(argv)
    opts = BenchOptions(
        calls=a.calls, profile=a.profile, turns=a.turns, ramp_s=a.ramp_s,
        barge_after_ms=a.barge_after_ms, warmup=not a.no_warmup, embedded_dir=a.embedded_dir,
    )
    if a.out is not None:
        opts.out_dir = a.out
    return opts


def main(argv: list[str] | None = None) -> int:
    console = Console()
    try:
        opts = parse(argv)
        opts.validate()
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    run_bench(opts, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
