"""Every Prometheus metric FrontDesk exports, in one place (its names are a contract too:
dashboards and alert rules name them; tests/unit/test_observability_assets.py checks that).

Each process builds one `Metrics` with its own registry (no module-level registry): the
services pass it to the parts that observe something. A part built without one (tests,
tools) gets a private `Metrics` whose numbers nobody reads.

Conventions: base units (seconds, bytes), `_total` counters, bounded label values only (route
templates, pipeline names, tool names from the tool catalogue, provider names from the code,
outcomes from fixed sets): never a call sid, a phone number or free text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector

__all__ = ["CONTENT_TYPE_LATEST", "TURN_STAGES", "Metrics"]

# Turn stages take tens of milliseconds to seconds.
STAGE_BUCKETS_S = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
# Requests, batches, deliveries: a millisecond to tens of seconds.
REQUEST_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# A WebSocket session is a call: seconds to half an hour.
SESSION_BUCKETS_S = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)
# Forwarding delays are sub-millisecond when healthy; the buckets resolve 0.1 ms .. 1 s.
FORWARD_BUCKETS_S: tuple[float, ...] = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01)
FORWARD_BUCKETS_S += (0.02, 0.05, 0.1, 0.25, 0.5, 1.0)

TURN_STAGES = (
    "endpointing",  # caller's last word -> the turn decided (STT endpointing / utterance end)
    "final_transcript",  # caller audio -> its final transcript back from STT
    "llm_first_token",  # LLM request sent -> first text token
    "tts_first_byte",  # first text of a turn sent to TTS -> its first audio byte
    "first_audio",  # caller's last word -> first agent audio frame sent to Twilio
    "barge_in_reaction",  # interruption detected in caller audio -> Twilio `clear` sent
    "greeting_first_frame",  # stream `start` received -> first greeting frame sent
)


class Metrics:
    """The metric families of one process, registered on its own registry."""

    def __init__(self, service: str = "unnamed", *, process: bool = False) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        if process:  # the standard process_* / python_* metrics
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)

        # --- HTTP and WebSocket (gateway, media, the workers' ops port) ---------------------
        self.http_requests = Counter(
            "frontdesk_http_requests_total",
            "HTTP requests served, by route template, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "frontdesk_http_request_duration_seconds",
            "Time to serve an HTTP request (to the end of the response body).",
            ["route", "method"],
            buckets=REQUEST_BUCKETS_S,
            registry=r,
        )
        self.ws_sessions = Counter(
            "frontdesk_websocket_sessions_total",
            "WebSocket sessions ended, by route and outcome (normal, rejected, error, "
            "shutdown, disconnected).",
            ["route", "outcome"],
            registry=r,
        )
        self.ws_duration = Histogram(
            "frontdesk_websocket_session_duration_seconds",
            "How long a WebSocket session lasted (accept to close).",
            ["route"],
            buckets=SESSION_BUCKETS_S,
            registry=r,
        )

        # --- calls and turns -------------------------------------------------------------------
        self.active_calls = Gauge(
            "frontdesk_active_calls",
            "Calls this media replica is serving now, by pipeline.",
            ["pipeline"],
            registry=r,
        )
        self.calls = Counter(
            "frontdesk_calls_total",
            "Calls a media replica started serving, by pipeline.",
            ["pipeline"],
            registry=r,
        )
        self.turn_stage = Histogram(
            "frontdesk_turn_stage_seconds",
            "Duration of one stage of a turn (see TURN_STAGES in shared/observability/metrics.py).",
            ["stage"],
            buckets=STAGE_BUCKETS_S,
            registry=r,
        )
        self.inbound_forward = Histogram(
            "media_inbound_forward_seconds",
            "Twilio media frame received -> written to the STT socket (1 frame in 10).",
            buckets=FORWARD_BUCKETS_S,
            registry=r,
        )
        self.outbound_forward = Histogram(
            "media_outbound_forward_seconds",
            "TTS audio chunk received -> written to the Twilio socket.",
            buckets=FORWARD_BUCKETS_S,
            registry=r,
        )

        # --- providers and tools ---------------------------------------------------------------
        self.provider_errors = Counter(
            "frontdesk_provider_errors_total",
            "Provider failures written to call logs, by provider.",
            ["provider"],
            registry=r,
        )
        self.provider_reconnects = Counter(
            "frontdesk_provider_reconnects_total",
            "Provider connections re-opened mid-call (or replaced by a fallback), by provider.",
            ["provider"],
            registry=r,
        )
        self.tool_executions = Counter(
            "frontdesk_tool_executions_total",
            "Tool calls executed, by tool and outcome (ok, failed).",
            ["tool", "outcome"],
            registry=r,
        )
        self.tool_duration = Histogram(
            "frontdesk_tool_execution_duration_seconds",
            "Time to execute one tool call, by tool.",
            ["tool"],
            buckets=REQUEST_BUCKETS_S,
            registry=r,
        )

        self.preempt_replies = Counter(
            "frontdesk_preemptive_replies_total",
            "Replies started before the final transcript, by outcome (used, discarded).",
            ["outcome"],
            registry=r,
        )

        self.fillers = Counter(
            "frontdesk_fillers_total",
            "Fillers for a slow reply, by outcome (slow_reply, tool_pending: spoken; uncached:"
            " due but its audio was not cached).",
            ["outcome"],
            registry=r,
        )

        # --- work streams (brain, tools, recorder) ------------------------------------------
        self.work_items = Counter(
            "frontdesk_work_items_total",
            "Work items handled from a stream's consumer group, by outcome (ok, error).",
            ["stream", "outcome"],
            registry=r,
        )
        self.work_duration = Histogram(
            "frontdesk_work_item_duration_seconds",
            "Time to handle one work item.",
            ["stream"],
            buckets=(*REQUEST_BUCKETS_S, 60, 120, 300),
            registry=r,
        )
        self.work_in_progress = Gauge(
            "frontdesk_work_items_in_progress",
            "Work items this replica is handling now.",
            ["stream"],
            registry=r,
        )
        self.stream_pending = Gauge(
            "frontdesk_stream_pending_entries",
            "Entries delivered to a consumer group but not yet acknowledged (XPENDING).",
            ["stream", "group"],
            registry=r,
        )
        self.stream_lag = Gauge(
            "frontdesk_stream_lag_entries",
            "Entries in a stream not yet delivered to its consumer group (XINFO GROUPS lag).",
            ["stream", "group"],
            registry=r,
        )

        # --- recorder ----------------------------------------------------------------------
        self.recorder_calls = Gauge(
            "frontdesk_recorder_active_calls",
            "Calls this recorder replica is following now.",
            registry=r,
        )
        self.recorder_backlog: dict[str, int] = {}  # call sid -> entries read, not committed
        self.recorder_behind = Gauge(
            "frontdesk_recorder_entries_behind",
            "Call-log entries this recorder replica has read but not yet committed to Postgres.",
            registry=r,
        )
        self.recorder_behind.set_function(lambda: sum(self.recorder_backlog.values()))
        self.recorder_batch = Histogram(
            "frontdesk_recorder_batch_write_seconds",
            "Time to write and commit one batch of a call's entries.",
            buckets=REQUEST_BUCKETS_S,
            registry=r,
        )
        self.recorder_lag = Histogram(
            "frontdesk_recorder_lag_seconds",
            "Entry appended to the call log -> committed to Postgres (oldest entry of a batch).",
            buckets=(*STAGE_BUCKETS_S, 30.0, 60.0, 300.0),
            registry=r,
        )
        self.recorder_entries = Counter(
            "frontdesk_recorder_entries_total",
            "Call-log entries committed to Postgres by this replica.",
            registry=r,
        )
        self.call_cost = Counter(
            "frontdesk_call_cost_minor_units_total",
            "Priced cost of recorded calls at post-call time (STT, LLM, TTS; telephony when "
            "known by then), in minor units (cents) of the price table's currency.",
            ["currency"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "frontdesk_webhook_deliveries_total",
            "Webhook delivery attempts, by outcome (delivered, retry, dead).",
            ["outcome"],
            registry=r,
        )
        self.webhook_duration = Histogram(
            "frontdesk_webhook_delivery_duration_seconds",
            "Time of one webhook POST (until the response or the error).",
            buckets=REQUEST_BUCKETS_S,
            registry=r,
        )

        # --- health ---------------------------------------------------------------------------
        self.ready = Gauge(
            "frontdesk_ready",
            "1 when this replica is ready (Redis and Postgres reachable, not draining).",
            registry=r,
        )
        self.draining = Gauge(
            "frontdesk_draining", "1 while this replica is draining (stopping).", registry=r
        )

        # --- self-hosted speech (services/speech, issue 15) -----------------------------------
        self.speech_decode = Histogram(
            "speech_decode_seconds",
            "One Whisper decode of an utterance (kind: final or interim), queue wait excluded.",
            ["kind"],
            buckets=STAGE_BUCKETS_S,
            registry=r,
        )
        self.speech_decodes_pending = Gauge(
            "speech_decodes_pending",
            "Decodes submitted to the thread pool and not finished (queued or running).",
            registry=r,
        )
        self.speech_sessions = Gauge(
            "speech_listen_sessions", "Open /v1/listen sockets on this replica.", registry=r
        )
        self.speech_interims_skipped = Counter(
            "speech_interims_skipped_total",
            "Interim decodes skipped because the decode pool was busy.",
            registry=r,
        )
        self.speech_audio = Counter(
            "speech_audio_seconds_total", "Caller audio received on /v1/listen.", registry=r
        )

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

    def names(self) -> set[str]:
        """Every sample name this registry can export (for checking dashboards and rules)."""
        out: set[str] = set()
        for family in self.registry.collect():
            out.add(family.name)
            for sample in family.samples:
                out.add(sample.name)
            if family.type == "histogram":
                out |= {f"{family.name}_{s}" for s in ("bucket", "count", "sum")}
            if family.type == "counter":
                out.add(f"{family.name}_total")
        return out

    @contextmanager
    def call_active(self, pipeline: str) -> Iterator[None]:
        """Count a call as active on this replica for the duration of the block."""
        self.calls.labels(pipeline).inc()
        gauge = self.active_calls.labels(pipeline)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def stage(self, stage: str, seconds: float) -> None:
        """Observe one turn stage (negative durations, from clock skew, are dropped)."""
        if seconds >= 0:
            self.turn_stage.labels(stage).observe(seconds)

    def preempt_outcome(self, used: bool) -> None:
        """Count one preemptive reply, used or discarded."""
        self.preempt_replies.labels("used" if used else "discarded").inc()

    def tool_done(self, tool: str, ok: bool, seconds: float) -> None:
        """Count one tool execution."""
        self.tool_executions.labels(tool, "ok" if ok else "failed").inc()
        self.tool_duration.labels(tool).observe(seconds)

    def webhook_done(self, outcome: str, seconds: float) -> None:
        """Count one webhook delivery attempt."""
        self.webhook_deliveries.labels(outcome).inc()
        self.webhook_duration.observe(seconds)
