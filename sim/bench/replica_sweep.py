"""`frontdesk bench --replicas 1,2,4`: the same load with 1, 2 and 4 media replicas behind
HAProxy, one after another in one run, and the per-call cost side by side.

Every configuration goes through HAProxy (also with one replica), so the rows differ only in the
replica count. Each row is a full bench run (its own JSON and PNG); the table adds per-service
CPU per call-minute summed over a service's replicas, Redis commands per call (INFO
commandstats delta) and the platform-added latency. A sweep JSON collects the rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from sim.bench.report import write_json
from sim.bench.runner import BenchOptions, run_bench

COLUMNS = ("gateway", "media", "brain", "tools", "recorder", "haproxy", "redis", "postgres")
PLATFORM = frozenset(COLUMNS)
MAX_MEDIA = 8


def parse_counts(spec: str) -> list[int]:
    """"1,2,4" -> [1, 2, 4] (media replica counts); ValueError with a message if bad."""
    try:
        counts = [int(p) for p in spec.split(",") if p.strip()]
    except ValueError:
        msg = f"--replicas: expected media replica counts like 1,2,4, got {spec!r}"
        raise ValueError(msg) from None
    if not counts or any(not 1 <= n <= MAX_MEDIA for n in counts):
        raise ValueError(f"--replicas: each media replica count must be 1..{MAX_MEDIA}")
    return counts


def service_of(process: str) -> str:
    """A process label's service: media-3 -> media, gateway -> gateway, sims -> sims."""
    head, _, tail = process.rpartition("-")
    return head if head and tail.isdigit() else process


def per_service(cpu: dict[str, float]) -> dict[str, float]:
    """CPU s per call-minute summed over each service's replicas."""
    out: dict[str, float] = {}
    for process, value in cpu.items():
        key = service_of(process)
        out[key] = round(out.get(key, 0.0) + value, 3)
    return out


def row(report: dict[str, Any], redis_mode: str) -> dict[str, Any]:
    """One configuration's per-call figures from its bench report."""
    m = report["metrics"]
    cpu = per_service(m["cpu_s_per_call_minute"])
    added = m["platform_added_ms"]
    return {
        "media_replicas": (report["meta"].get("replicas") or {}).get("media", 1),
        "redis": redis_mode,
        "calls": report["meta"]["calls"],
        "call_minutes": report["details"]["call_minutes"],
        "cpu_s_per_call_minute": {k: cpu.get(k) for k in COLUMNS},
        "platform_cpu_s_per_call_minute": round(sum(cpu.get(k, 0.0) for k in PLATFORM), 3),
        "machine_cpu_s_per_call_minute": cpu.get("machine (all processes)"),
        "redis_commands_per_call": m["redis_commands_per_call"].get("value"),
        # per call-minute too: a failed call stops early and issues fewer commands
        "redis_commands_per_call_minute": _per_minute(report),
        "redis_commands_top": report["details"]["redis_commands_top"],
        "platform_added_ms": {q: added.get(q) for q in ("p50", "p99")},
        "errors": m["errors"]["value"],
        "dropped_frames": m["dropped_frames"]["value"],
        "report": report["meta"].get("json_path"),
    }


def _per_minute(report: dict[str, Any]) -> float | None:
    per_call = report["metrics"]["redis_commands_per_call"].get("value")
    minutes = report["details"]["call_minutes"]
    if per_call is None or not minutes:
        return None
    return round(per_call * report["meta"]["calls"] / minutes, 1)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The side-by-side table (CPU s per call-minute per service)."""
    head = (
        "| media replicas | redis | " + " | ".join(COLUMNS)
        + " | platform | Redis cmds / call | / call-min | platform-added p50 / p99 ms"
        + " | errors / dropped |"
    )
    lines = [head, "|" + "---|" * (len(COLUMNS) + 7)]
    for r in rows:
        if "failed" in r:
            lines.append(f"| {r['media_replicas']} | {r['redis']} | failed: {r['failed'][:80]} |")
            continue
        cpu = r["cpu_s_per_call_minute"]
        cells = " | ".join("-" if cpu[k] is None else f"{cpu[k]:.3f}" for k in COLUMNS)
        added = r["platform_added_ms"]
        lines.append(
            f"| {r['media_replicas']} | {r['redis']} | {cells}"
            f" | {r['platform_cpu_s_per_call_minute']:.3f} | {r['redis_commands_per_call']}"
            f" | {r['redis_commands_per_call_minute']}"
            f" | {added['p50']} / {added['p99']} | {r['errors']} / {r['dropped_frames']} |"
        )
    return "\n".join(lines)


RedisMode = Callable[[BenchOptions], tuple[BenchOptions, Callable[[], None]]]


def single_redis(opts: BenchOptions) -> tuple[BenchOptions, Callable[[], None]]:
    """The configured or embedded single Redis, as `make bench` uses."""
    return opts, lambda: None


def redis_cluster(opts: BenchOptions) -> tuple[BenchOptions, Callable[[], None]]:
    """A fresh local 3-master Redis Cluster (frontdesk/local_cluster.py) for this run."""
    from frontdesk.local_cluster import start_cluster

    cluster = start_cluster(3)
    env = opts.extra_env | {"REDIS_CLUSTER": "true"}
    return replace(opts, redis_url=cluster.url, extra_env=env), cluster.stop


REDIS_MODES: dict[str, RedisMode] = {"single": single_redis, "cluster": redis_cluster}


def redis_modes(choice: str) -> dict[str, RedisMode]:
    """--redis single | cluster | both."""
    if choice == "both":
        return dict(REDIS_MODES)
    if choice not in REDIS_MODES:
        raise ValueError(f"--redis must be single, cluster or both, got {choice!r}")
    return {choice: REDIS_MODES[choice]}


def run_replica_sweep(
    base: BenchOptions,
    counts: list[int],
    modes: dict[str, RedisMode],
    console: Console | None = None,
) -> Path:
    """Run the bench once per (Redis mode, media replica count); write and print the table."""
    console = console or Console()
    rows: list[dict[str, Any]] = []
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = base.out_dir / f"bench-replicas-{base.profile}-{base.calls}calls-{stamp}.json"
    for mode_name, mode in modes.items():
        for media in counts:
            opts = replace(
                base,
                replicas={"media": media},
                # placement is not under test here: no replica may turn calls away as full
                extra_env=base.extra_env | {"MEDIA_MAX_CALLS": "0"},
                label=f"-media{media}-{mode_name}",
            )
            try:
                opts, done = mode(opts)
                try:
                    json_path, _ = run_bench(opts, console)
                finally:
                    done()
            except (RuntimeError, TimeoutError, OSError) as exc:  # the other rows still count
                console.print(f"[red]media x{media}, {mode_name} Redis: {exc}[/]")
                rows.append({"media_replicas": media, "redis": mode_name, "failed": str(exc)})
                continue
            report = json.loads(json_path.read_text())
            report["meta"]["json_path"] = str(json_path)
            rows.append(row(report, mode_name))
            write_json(_sweep(base, rows), out)  # after every row: a later failure keeps it
    write_json(_sweep(base, rows), out)
    console.print(markdown(rows))
    console.print(f"sweep: {out}")
    return out


def _sweep(base: BenchOptions, rows: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in rows if "failed" not in r]
    return {"calls": base.calls, "profile": base.profile, "turns": base.turns, "rows": rows,
            "table": markdown(done)}
