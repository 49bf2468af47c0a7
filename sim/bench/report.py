"""The bench report: targets, JSON file, PNG plot and the summary table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

# Every key the "metrics" object of a report has (the smoke test checks them all).
METRIC_KEYS = (
    "platform_added_ms",
    "voice_to_voice_ms",
    "provider_latency_sum_ms",
    "preempt_used",
    "wasted_tokens",
    "false_interrupt_rate",
    "greeting_ms",
    "greeting_server_ms",
    "barge_in_reaction_ms",
    "barge_in_decision_ms",
    "barge_in_heard_ms",
    "inbound_forward_ms",
    "outbound_forward_ms",
    "outbound_underruns",
    "cpu_s_per_call_minute",
    "media_cpu_pct_per_active_call",
    "rss_mb",
    "media_rss_growth_mb_per_active_call",
    "redis_commands_per_call",
    "errors",
    "dropped_frames",
)

# (label, metric, statistic, limit): the targets (100 calls, `zero` profile).
TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("platform-added p50 <= 5 ms", "platform_added_ms", "p50", 5.0),
    ("platform-added p99 <= 20 ms", "platform_added_ms", "p99", 20.0),
    ("voice-to-voice p50 <= 650 ms (issue 17)", "voice_to_voice_ms", "p50", 650.0),
    ("barge-in reaction p99 <= 10 ms", "barge_in_reaction_ms", "p99", 10.0),
    ("greeting first frame p99 <= 50 ms", "greeting_ms", "p99", 50.0),
    ("media CPU <= 0.5% core per call", "media_cpu_pct_per_active_call", "value", 0.5),
    ("media RSS growth <= 1 MB per call", "media_rss_growth_mb_per_active_call", "value", 1.0),
    ("zero errors", "errors", "value", 0.0),
    ("zero dropped frames", "dropped_frames", "value", 0.0),
)


def evaluate_targets(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured value and pass / fail / n/a."""
    out: list[dict[str, Any]] = []
    for label, key, stat, limit in TARGETS:
        entry = metrics.get(key, {})
        value = entry.get(stat) if isinstance(entry, dict) else None
        verdict = "n/a" if value is None else ("pass" if value <= limit else "fail")
        out.append({"target": label, "metric": key, "stat": stat, "limit": limit,
                    "value": value, "verdict": verdict, "na": entry.get("na")})
    return out


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")


def _fmt(entry: Any, stats: tuple[str, ...] = ("p50", "p95", "p99")) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    if "na" in entry:
        return f"n/a: {entry['na']}"
    if "value" in entry:
        return f"{entry['value']}"
    return " / ".join(f"{entry[s]:.1f}" for s in stats if s in entry) + f"  (n={entry.get('n')})"


def print_summary(report: dict[str, Any], console: Console) -> None:
    """The summary table and the target verdicts."""
    m = report["metrics"]
    meta = report["meta"]
    table = Table(
        title=f"FrontDesk bench: {meta['calls']} calls, profile {meta['profile']}, "
        f"{meta['turns']} turns/call, {meta['wall_s']:.0f} s",
        show_lines=False,
    )
    table.add_column("metric")
    table.add_column("p50 / p95 / p99 ms, or value", overflow="fold")
    rows = (
        ("platform-added latency / turn", "platform_added_ms"),
        ("voice-to-voice / turn (caller)", "voice_to_voice_ms"),
        ("  provider latencies, summed (ms)", "provider_latency_sum_ms"),
        ("preemptive replies used (fraction)", "preempt_used"),
        ("wasted LLM tokens (discarded replies)", "wasted_tokens"),
        ("false interrupts that stood (labelled clips)", "false_interrupt_rate"),
        ("greeting first frame (caller)", "greeting_ms"),
        ("greeting first frame (media)", "greeting_server_ms"),
        ("barge-in reaction (trigger -> clear)", "barge_in_reaction_ms"),
        ("barge-in decision (onset -> trigger)", "barge_in_decision_ms"),
        ("barge-in heard (caller -> clear)", "barge_in_heard_ms"),
        ("inbound forward (frame -> STT)", "inbound_forward_ms"),
        ("outbound forward (TTS -> Twilio)", "outbound_forward_ms"),
        ("outbound underruns (gaps heard)", "outbound_underruns"),
        ("media CPU % core / active call", "media_cpu_pct_per_active_call"),
        ("media RSS growth MB / active call", "media_rss_growth_mb_per_active_call"),
        ("Redis commands / call", "redis_commands_per_call"),
        ("errors", "errors"),
        ("dropped frames", "dropped_frames"),
    )
    for label, key in rows:
        table.add_row(label, _fmt(m[key]))
    cpu = m["cpu_s_per_call_minute"]
    rss = m["rss_mb"]
    for name in cpu:
        r = rss.get(name)
        memory = f"  |  {r.get('baseline_mb')} -> peak {r.get('peak_mb')}" if r else ""
        table.add_row(f"  {name}: CPU s / call-min, RSS MB", f"{cpu[name]}{memory}")
    console.print(table)
    verdicts = Table("target", "measured", "verdict")
    for t in report["targets"]:
        colour = {"pass": "green", "fail": "red"}.get(t["verdict"], "yellow")
        shown = t["na"] if t["value"] is None else t["value"]
        verdicts.add_row(t["target"], str(shown), f"[{colour}]{t['verdict']}[/]")
    console.print(verdicts)
