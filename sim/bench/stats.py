"""Percentiles of samples and of Prometheus histograms, as report entries."""

from __future__ import annotations

import math
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Entry = dict[str, Any]  # {"p50": .., "p95": .., "p99": .., ...} or {"na": "reason"}


def na(reason: str) -> Entry:
    """A metric that could not be measured, and why."""
    return {"na": reason}


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    pos = (len(sorted_values) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(values: list[float], empty_reason: str, digits: int = 2) -> Entry:
    """p50/p95/p99/mean/max/n of samples (milliseconds), or n/a when there are none."""
    if not values:
        return na(empty_reason)
    ordered = sorted(values)
    return {
        "p50": round(percentile(ordered, 50), digits),
        "p95": round(percentile(ordered, 95), digits),
        "p99": round(percentile(ordered, 99), digits),
        "mean": round(sum(ordered) / len(ordered), digits),
        "max": round(ordered[-1], digits),
        "n": len(ordered),
    }


def histogram_buckets(metrics_text: str, name: str) -> tuple[list[tuple[float, float]], float]:
    """Cumulative (upper bound, count) buckets and the sum of histogram `name`."""
    buckets: list[tuple[float, float]] = []
    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name == f"{name}_sum":
                total = sample.value
    return sorted(buckets), total


def histogram_summary(metrics_text: str, name: str, empty_reason: str) -> Entry:
    """Percentiles (ms) interpolated inside Prometheus buckets; exact mean from the sum."""
    buckets, total_s = histogram_buckets(metrics_text, name)
    count = buckets[-1][1] if buckets else 0.0
    if count <= 0:
        return na(empty_reason)

    def quantile(q: float) -> float:
        rank = count * q
        prev_bound, prev_count = 0.0, 0.0
        for bound, cumulative in buckets:
            if cumulative >= rank:
                if math.isinf(bound):
                    return prev_bound * 1000  # beyond the last finite bucket: a lower bound
                inside = cumulative - prev_count
                frac = (rank - prev_count) / inside if inside else 1.0
                return (prev_bound + (bound - prev_bound) * frac) * 1000
            prev_bound, prev_count = bound, cumulative
        return prev_bound * 1000

    return {
        "p50": round(quantile(0.50), 3),
        "p95": round(quantile(0.95), 3),
        "p99": round(quantile(0.99), 3),
        "mean": round(total_s / count * 1000, 3),
        "n": int(count),
        "source": "media /metrics histogram (bucket-interpolated)",
    }
