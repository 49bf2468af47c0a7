"""The bench PNG: latency histograms and CPU / RSS of every process over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_report(report: dict[str, Any], path: Path) -> None:
    """Four panels: per-turn latencies, greeting/barge-in, CPU % and RSS over time."""
    samples: dict[str, list[float]] = report["samples"]
    series: dict[str, Any] = report["timeseries"]
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    meta = report["meta"]
    fig.suptitle(f"FrontDesk bench: {meta['calls']} calls, profile {meta['profile']}")

    ax = axes[0][0]
    for key in ("platform_added_ms", "voice_to_voice_ms"):
        if samples.get(key):
            ax.hist(samples[key], bins=40, alpha=0.6, label=key)
    ax.set_title("per turn (ms)")
    ax.set_xlabel("ms")
    ax.legend(fontsize=8)

    ax = axes[0][1]
    for key in ("greeting_ms", "barge_in_reaction_ms", "barge_in_heard_ms"):
        if samples.get(key):
            ax.hist(samples[key], bins=40, alpha=0.6, label=key)
    ax.set_title("greeting and barge-in (ms)")
    ax.set_xlabel("ms")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    for name, s in series["processes"].items():
        ax.plot(s["t_cpu"], s["cpu_pct"], label=name, linewidth=1)
    ax.set_title("CPU (% of one core)")
    ax.set_xlabel("s")
    twin = ax.twinx()
    twin.plot(series["active_t_s"], series["active_calls"], "k--", linewidth=1)
    twin.set_ylabel("active calls (dashed)")
    ax.legend(fontsize=7, loc="upper left")

    ax = axes[1][1]
    for name, s in series["processes"].items():
        if s["rss_mb"]:  # the machine-wide series has CPU only
            ax.plot(s["t_s"], s["rss_mb"], label=name, linewidth=1)
    ax.set_title("RSS (MB)")
    ax.set_xlabel("s")
    ax.legend(fontsize=7, loc="upper left")

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
