"""`make bench-smoke`: a tiny benchmark run, so the benchmark never rots.

Checks that the report is produced and complete (every metric measured or explained), never
how fast anything was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from sim.bench.report import METRIC_KEYS, TARGETS
from sim.bench.runner import BenchOptions, run_bench
from tests.conftest import Infra

pytestmark = pytest.mark.e2e
CALLS = 3
LATENCY_KEYS = (
    "platform_added_ms",
    "voice_to_voice_ms",
    "greeting_ms",
    "greeting_server_ms",
    "barge_in_reaction_ms",
    "barge_in_heard_ms",
    "inbound_forward_ms",
    "outbound_forward_ms",
)


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _complete(entry: Any) -> bool:
    """Numbers (possibly nested), or an explicit n/a with a reason."""
    if isinstance(entry, dict):
        if "na" in entry:
            return isinstance(entry["na"], str) and bool(entry["na"].strip())
        return bool(entry) and all(
            _complete(v) or k in ("source",) or v is None for k, v in entry.items()
        )
    return _numeric(entry)


def test_bench_smoke_writes_a_complete_report(infra: Infra, tmp_path: Path) -> None:
    opts = BenchOptions(
        calls=CALLS,
        profile="zero",
        turns=4,
        out_dir=tmp_path / "results",
        ramp_s=0.5,
        warmup=False,
        embedded_dir=tmp_path / "bench",
        redis_url=infra.redis_url,
        database_url=infra.database_url,
    )
    json_path, png_path = run_bench(opts, Console(width=120))

    assert png_path.exists() and png_path.stat().st_size > 10_000
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(json_path.read_text())
    metrics = report["metrics"]
    assert sorted(metrics) == sorted(METRIC_KEYS)
    for key in METRIC_KEYS:
        assert _complete(metrics[key]), f"{key} is neither numeric nor explained: {metrics[key]}"
    for key in LATENCY_KEYS:
        entry = metrics[key]
        assert "na" in entry or {"p50", "p95", "p99", "n"} <= entry.keys(), (key, entry)
    # Every call was placed, greeted and recorded: the figures describe real calls. (Whether
    # the platform made errors is the e2e tests' business; here it only has to be counted.)
    assert report["meta"]["calls"] == CALLS
    assert report["details"]["calls_recorded"] == CALLS
    assert isinstance(metrics["errors"]["value"], int)
    assert isinstance(metrics["dropped_frames"]["value"], int)
    assert metrics["greeting_ms"]["n"] == CALLS
    assert metrics["platform_added_ms"]["n"] >= CALLS
    assert set(metrics["rss_mb"]) >= {"gateway", "media", "brain", "tools", "recorder"}
    assert set(metrics["cpu_s_per_call_minute"]) >= {"media", "brain"}
    assert [t["target"] for t in report["targets"]] == [t[0] for t in TARGETS]
    assert all(t["verdict"] in ("pass", "fail", "n/a") for t in report["targets"])
