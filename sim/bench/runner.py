"""Run a benchmark: N concurrent simulated calls through the whole platform, measured."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shared.runtime.settings import get_settings
from sim.bench.bench_stack import ROOT, BenchStack, infra_pids, start_bench_stack
from sim.bench.caller import BenchCall, BenchLine, bench_lines, place_bench_call
from sim.bench.collect import collect_metrics
from sim.bench.plot import plot_report
from sim.bench.profiles import LatencyProfile, profile_named
from sim.bench.redis_nodes import command_counts
from sim.bench.report import evaluate_targets, print_summary, write_json
from sim.bench.resources import cpu_percent_series
from sim.bench.sampler import ProcessSampler, Sampled
from sim.twilio_call_model import TwilioCallerOptions
from sim.twilio_webhook import new_sid

MAX_CALLS = 500


@dataclass
class BenchOptions:
    """What to run and where to put the results."""

    calls: int = 100
    profile: str = "zero"
    turns: int = 4
    out_dir: Path = field(default_factory=lambda: ROOT / "bench" / "results")
    ramp_s: float | None = None  # spread call starts over this long; default 0.1 s per call
    barge_after_ms: int = 1500
    warmup: bool = True
    embedded_dir: Path | None = None  # default: EMBEDDED_DIR/bench
    redis_url: str | None = None  # default: REDIS_URL, else an embedded Redis
    database_url: str | None = None  # default: DATABASE_URL, else an embedded Postgres
    max_call_s: float = 180.0
    replicas: dict[str, int] | None = None  # behind HAProxy (sim/bench/replica_sweep.py)
    extra_env: dict[str, str] = field(default_factory=dict)  # for every service (REDIS_CLUSTER)
    label: str = ""  # added to the report's file name
    labelled_turns: dict[str, Any] | None = None  # barge-in on the labelled clips (bench-turns)

    def validate(self) -> LatencyProfile:
        if not 1 <= self.calls <= MAX_CALLS:
            raise ValueError(f"--calls must be between 1 and {MAX_CALLS}, got {self.calls}")
        if self.ramp_s is not None and self.ramp_s < 0:
            raise ValueError("--ramp-s must be >= 0")
        bench_lines(self.turns)  # raises on too few turns
        return profile_named(self.profile)


@dataclass
class RunState:
    started: int = 0
    active: int = 0
    done: int = 0
    failed: int = 0


async def _one_call(
    bench: BenchStack, opts: BenchOptions, lines: list[BenchLine], state: RunState
) -> BenchCall:
    caller = TwilioCallerOptions(
        gateway_url=bench.gateway_url,
        auth_token=bench.env.get("TWILIO_AUTH_TOKEN", get_settings().twilio_auth_token),
        to_number=bench.to_number,
        from_number=f"+4477009{state.started:05d}",
        call_sid=new_sid("CA"),
        stt_control_url=bench.stt_url,
        max_call_s=opts.max_call_s,
        answer_timeout_s=15.0,
    )
    state.started += 1
    state.active += 1
    try:
        call = await place_bench_call(caller, lines, opts.barge_after_ms)
    finally:
        state.active -= 1
    state.done += 1
    if call.result.error:
        state.failed += 1
    return call


async def _run_calls(
    bench: BenchStack, opts: BenchOptions, lines: list[BenchLine], state: RunState,
    console: Console,
) -> list[BenchCall]:
    ramp = opts.ramp_s if opts.ramp_s is not None else 0.1 * opts.calls
    gap = ramp / opts.calls
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    # 2 refreshes/s: the counts change every 0.5 s anyway; rich's default 10/s redraw cost
    # ~13 ms of CPU per second on a terminal, in the process we measure
    with Progress(*columns, console=console, transient=False, refresh_per_second=2) as progress:
        task = progress.add_task("calls", total=opts.calls)
        t0 = time.monotonic()
        pending: list[asyncio.Task[BenchCall]] = []
        for i in range(opts.calls):
            delay = t0 + i * gap - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(_one_call(bench, opts, lines, state)))
            progress.update(task, completed=state.done,
                            description=f"active {state.active:3d}  failed {state.failed}")
        while not all(t.done() for t in pending):
            await asyncio.wait(pending, timeout=0.5)
            bench.stack.check_alive()
            progress.update(task, completed=state.done,
                            description=f"active {state.active:3d}  failed {state.failed}")
    return [t.result() for t in pending]


async def _warm_up(
    bench: BenchStack, opts: BenchOptions, lines: list[BenchLine], console: Console
) -> None:
    """One unmeasured call so lazy imports and first connections are not in the figures."""
    call = await _one_call(bench, opts, lines, RunState())
    if call.result.error:
        console.print(f"[yellow]warm-up call failed: {call.result.error}[/]")


async def _measure(
    bench: BenchStack, opts: BenchOptions, profile: LatencyProfile, console: Console
) -> dict[str, Any]:
    lines = bench_lines(opts.turns)
    redis_url, database_url = bench.embedded.redis_url, bench.embedded.database_url
    if opts.warmup:
        console.print("warm-up call ...")
        await _warm_up(bench, opts, lines, console)
    pids = {name: proc.pid for name, proc in bench.stack.procs.items()}
    pids |= await infra_pids(redis_url, database_url, bench.redis_cluster)
    pids["bench (callers)"] = os.getpid()
    state = RunState()
    sampler = ProcessSampler(pids, lambda: state.active, groups=frozenset({"postgres"}))
    sampler.start()
    await asyncio.sleep(1.0)  # baseline samples before the first call
    commands_before = await command_counts(redis_url, bench.redis_cluster)
    started = time.monotonic()
    calls = await _run_calls(bench, opts, lines, state, console)
    wall_s = time.monotonic() - started
    commands_after = await command_counts(redis_url, bench.redis_cluster)
    await asyncio.sleep(1.0)
    sampled: Sampled = sampler.stop()
    console.print("collecting call logs, recorder progress and media metrics ...")
    metrics, samples, extra = await collect_metrics(
        bench, calls, lines, profile, sampled, commands_before, commands_after, database_url
    )
    if opts.labelled_turns is not None:  # the default policy on the labelled clip set
        turns = opts.labelled_turns
        stood, clips = (int(x) for x in str(turns["false_stood"]).split("/"))
        metrics["false_interrupt_rate"] = {  # interruptions that stood; undone ones paused
            "value": round(stood / max(clips, 1), 3),
            "stood": turns["false_stood"],
            "onset_pauses": turns["false_interrupts"],
            "undone": turns["false_undone"],
            "missed": turns["missed_interrupts"],
            "reaction_ms_p50": turns["reaction_ms_p50"],
            "within_250_ms": turns["within_250_ms"],
            "source": "frontdesk bench-turns: the labelled clips, media's listening code",
        }
    return {
        "meta": {
            "calls": opts.calls,
            "profile": profile.name,
            "turns": opts.turns,
            "barge_after_ms": opts.barge_after_ms,
            "ramp_s": opts.ramp_s if opts.ramp_s is not None else 0.1 * opts.calls,
            "wall_s": round(wall_s, 1),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "lines": [{"text": ln.text, "barge_in": ln.barge_in} for ln in lines],
            "replicas": opts.replicas,
            "extra_env": opts.extra_env,
        },
        "profile": profile.as_dict(),
        "metrics": metrics,
        "targets": evaluate_targets(metrics),
        "details": extra,
        "samples": samples,
        "timeseries": _timeseries(sampled),
    }


def _timeseries(sampled: Sampled) -> dict[str, Any]:
    procs: dict[str, Any] = {}
    for name, s in sampled.series.items():
        t_cpu, pct = cpu_percent_series(s)
        procs[name] = {
            "t_s": [round(t, 2) for t in s.t_s],
            "rss_mb": [round(r, 1) for r in s.rss_mb],
            "t_cpu": [round(t, 2) for t in t_cpu],
            "cpu_pct": [round(p, 1) for p in pct],
        }
    return {
        "processes": procs,
        "active_t_s": [round(t, 2) for t in sampled.active_t_s],
        "active_calls": sampled.active_calls,
    }


def run_bench(opts: BenchOptions, console: Console | None = None) -> tuple[Path, Path]:
    """Start a platform, run the calls, write the JSON report and the PNG; returns their paths."""
    console = console or Console()
    profile = opts.validate()
    settings = get_settings()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"bench-{profile.name}-{opts.calls}calls{opts.label}-{stamp}"
    embedded_dir = opts.embedded_dir or Path(settings.embedded_dir) / "bench"
    log_dir = embedded_dir / "logs" / name
    console.print(f"starting the platform (profile {profile.name}; logs in {log_dir}) ...")
    bench = start_bench_stack(
        opts.redis_url or settings.redis_url,
        opts.database_url or settings.database_url,
        embedded_dir,
        log_dir,
        profile,
        opts.replicas,
        opts.extra_env,
    )
    try:
        # uvloop: the 100 callers' event loop is CPU taken from the platform being measured
        report = uvloop.run(_measure(bench, opts, profile, console))
    finally:
        bench.stop()
    report["meta"]["log_dir"] = str(log_dir)
    json_path = opts.out_dir / f"{name}.json"
    png_path = opts.out_dir / f"{name}.png"
    write_json(report, json_path)
    plot_report(report, png_path)
    print_summary(report, console)
    console.print(f"report: {json_path}\nplot:   {png_path}")
    return json_path, png_path
