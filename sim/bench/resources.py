"""Resource figures from the sampler: CPU per call-minute, media CPU and RSS per active call."""

from __future__ import annotations

from typing import Any

from sim.bench.sampler import ProcessSeries, Sampled
from sim.bench.stats import Entry, na

SERVICES = ("gateway", "media", "brain", "tools", "recorder")
STEADY_FRACTION = 0.8  # "steady state": at least this share of the peak number of active calls


def cpu_percent_series(series: ProcessSeries) -> tuple[list[float], list[float]]:
    """(times, % of one core) between consecutive samples."""
    times: list[float] = []
    pct: list[float] = []
    for i in range(1, len(series.t_s)):
        dt = series.t_s[i] - series.t_s[i - 1]
        if dt > 0:
            times.append(series.t_s[i])
            pct.append((series.cpu_s[i] - series.cpu_s[i - 1]) / dt * 100)
    return times, pct


def cpu_per_call_minute(sampled: Sampled, minutes: float) -> dict[str, float]:
    """CPU seconds each process used during the run, per call-minute served."""
    out: dict[str, float] = {}
    for name, series in sampled.series.items():
        if len(series.cpu_s) >= 2 and minutes > 0:
            out[name] = round((series.cpu_s[-1] - series.cpu_s[0]) / minutes, 3)
    return out


def _steady_window(sampled: Sampled) -> tuple[float, float, float] | None:
    """(start s, end s, mean active calls) of the stretch near peak concurrency."""
    active = sampled.active_calls
    if not active or max(active) == 0:
        return None
    floor = max(1.0, STEADY_FRACTION * max(active))
    idx = [i for i, n in enumerate(active) if n >= floor]
    start, end = sampled.active_t_s[idx[0]], sampled.active_t_s[idx[-1]]
    if end - start <= 0:
        return None
    inside = [active[i] for i in range(idx[0], idx[-1] + 1)]
    return start, end, sum(inside) / len(inside)


def _value_at(series: ProcessSeries, values: list[float], t: float) -> float:
    best = min(range(len(series.t_s)), key=lambda i: abs(series.t_s[i] - t))
    return values[best]


def cpu_pct_per_active_call(sampled: Sampled, name: str) -> Entry:
    """% of one core the process used per active call, over the steady window."""
    window = _steady_window(sampled)
    series = sampled.series.get(name)
    if window is None or series is None or len(series.t_s) < 2:
        return na("no stretch of sustained concurrent calls was sampled")
    start, end, mean_active = window
    used = _value_at(series, series.cpu_s, end) - _value_at(series, series.cpu_s, start)
    pct = used / (end - start) * 100
    return {
        "value": round(pct / mean_active, 4),
        "process_cpu_pct": round(pct, 1),
        "mean_active_calls": round(mean_active, 1),
        "window_s": round(end - start, 1),
    }


def rss_table(sampled: Sampled) -> dict[str, dict[str, Any]]:
    """Per process: RSS before the calls, peak, and growth per peak active call."""
    peak_active = max(sampled.active_calls, default=0)
    out: dict[str, dict[str, Any]] = {}
    for name, series in sampled.series.items():
        if not series.rss_mb:
            continue
        base, peak = series.rss_mb[0], max(series.rss_mb)
        out[name] = {
            "baseline_mb": round(base, 1),
            "peak_mb": round(peak, 1),
            "end_mb": round(series.rss_mb[-1], 1),
            "growth_mb_per_active_call": round((peak - base) / peak_active, 3)
            if peak_active
            else None,
        }
    return out
