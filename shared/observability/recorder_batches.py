"""What the recorder's batches tell an operator: a span per batch (in the call's trace),
write latency, lag behind the call log, and entries read but not yet committed."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import trace

from shared.contract import events as ev
from shared.observability.metrics import Metrics
from shared.runtime.telemetry import start_child_span


def entry_time_s(entry_id: str) -> float:
    """When a stream entry was appended (its id's milliseconds), in epoch seconds."""
    return int(entry_id.partition("-")[0]) / 1000


@contextmanager
def batch_observed(
    metrics: Metrics, call_sid: str, batch: Sequence[tuple[str, ev.Event]], queued: int
) -> Iterator[None]:
    """Observe the write of one batch of one call (`queued`: entries waiting behind it)."""
    metrics.recorder_backlog[call_sid] = len(batch) + queued
    traceparent = next((e.traceparent for _, e in batch if e.traceparent), None)
    span = start_child_span(
        "recorder.batch", traceparent, {"call.sid": call_sid, "recorder.entries": len(batch)}
    )
    began = time.perf_counter()
    try:
        with trace.use_span(span, end_on_exit=True):
            yield
    except BaseException:
        metrics.recorder_backlog.pop(call_sid, None)  # the work item is retried elsewhere
        raise
    metrics.recorder_batch.observe(time.perf_counter() - began)
    metrics.recorder_entries.inc(len(batch))
    if batch:
        metrics.recorder_lag.observe(max(0.0, time.time() - entry_time_s(batch[0][0])))
    if queued:
        metrics.recorder_backlog[call_sid] = queued
    else:
        metrics.recorder_backlog.pop(call_sid, None)


def follow_started(metrics: Metrics) -> None:
    """A call is followed by this replica from now on."""
    metrics.recorder_calls.inc()


def follow_ended(metrics: Metrics, call_sid: str) -> None:
    """This replica stopped following the call (recorded, or handed back)."""
    metrics.recorder_calls.dec()
    metrics.recorder_backlog.pop(call_sid, None)
