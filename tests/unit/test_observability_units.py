"""Pure parts of the observability code: turn stages from latency marks, WebSocket outcomes,
request spans answered later, the status view, per-service log levels."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from frontdesk.status import GroupInfo, Scrape, parse_metrics, render
from shared.observability.asgi import ws_outcome
from shared.observability.metrics import TURN_STAGES, Metrics
from shared.observability.pending_spans import PendingSpans
from shared.observability.turn_stages import MAX_TURNS_KEPT, StageClock
from shared.runtime.process import level_for
from shared.runtime.settings import Settings


def test_stages_close_in_either_order_and_only_once() -> None:
    clock = StageClock()
    assert clock.mark(1, "speech_end", 10.0) == []
    assert clock.mark(1, "stt_final", 10.3) == [("endpointing", 10.3 - 10.0)]
    assert clock.mark(1, "stt_final", 11.0) == []  # a repeated mark: the first one counts
    assert clock.mark(1, "first_audio_sent", 11.2) == [("first_audio", 11.2 - 10.0)]
    # the greeting's speech_end is written after its first audio
    assert clock.mark(0, "first_audio_sent", 5.25) == []
    assert clock.mark(0, "speech_end", 5.0) == [("greeting_first_frame", 0.25)]
    assert clock.mark(2, "llm_request", 1.0) == []
    assert clock.mark(2, "llm_first_token", 1.5) == [("llm_first_token", 0.5)]


def test_stage_clock_forgets_old_turns() -> None:
    clock = StageClock()
    for turn in range(1, 100):
        clock.mark(turn, "speech_end", float(turn))
    assert clock.mark(1, "stt_final", 200.0) == []  # turn 1 was forgotten
    assert clock.mark(99, "stt_final", 100.0) == [("endpointing", 1.0)]
    assert len(clock._marks) <= MAX_TURNS_KEPT


def test_every_stage_name_is_a_documented_stage() -> None:
    metrics = Metrics()
    for stage in TURN_STAGES:
        metrics.stage(stage, 0.1)
    metrics.stage("endpointing", -1.0)  # clock skew: dropped
    text = metrics.exposition().decode()
    counts = {
        s.labels["stage"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "frontdesk_turn_stage_seconds_count"
    }
    assert counts == dict.fromkeys(TURN_STAGES, 1.0)


def test_websocket_outcomes() -> None:
    assert ws_outcome(1000, by_client=False) == "normal"
    assert ws_outcome(1000, by_client=True) == "normal"
    assert ws_outcome(1008, by_client=False) == "rejected"
    assert ws_outcome(1011, by_client=False) == "error"
    assert ws_outcome(1012, by_client=False) == "shutdown"
    assert ws_outcome(1006, by_client=True) == "disconnected"
    assert ws_outcome(None, by_client=False) == "error"


def test_pending_spans_end_on_answer_and_when_evicted() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    pending = PendingSpans("tts.request", limit=2, spans=tracer)
    with tracer.start_as_current_span("parent") as parent:
        pending.sent((1, 0), {"characters": 5})
        pending.sent((1, 1), {"characters": 6})
        pending.sent((2, 0), {"characters": 7})  # evicts (1, 0), unanswered
        pending.answered((1, 1))
        pending.answered((9, 9))  # unknown: nothing happens
    spans = {
        (s.attributes or {})["characters"]: s
        for s in exporter.get_finished_spans()
        if s.name == "tts.request"
    }
    assert set(spans) == {5, 6}
    assert (spans[5].attributes or {})["request.answered"] is False
    assert (spans[6].attributes or {})["request.answered"] is True
    assert spans[6].parent is not None
    assert spans[6].parent.span_id == parent.get_span_context().span_id
    assert len(pending) == 1  # (2, 0) still waits for its audio


def test_status_view_renders_calls_lag_and_recorder() -> None:
    media = parse_metrics(
        "http://media-a:8020",
        "# TYPE frontdesk_active_calls gauge\n"
        'frontdesk_active_calls{pipeline="cascade"} 3\n'
        'frontdesk_active_calls{pipeline="deepgram-agent"} 1\n'
        "# TYPE frontdesk_calls_total counter\n"
        'frontdesk_calls_total{pipeline="cascade"} 40\n',
    )
    assert media.samples["frontdesk_active_calls"] == 4
    recorder = parse_metrics(
        "http://recorder-a:9464",
        "# TYPE frontdesk_recorder_entries_behind gauge\nfrontdesk_recorder_entries_behind 17\n"
        "# TYPE frontdesk_ready gauge\nfrontdesk_ready 1\n",
    )
    down = Scrape("http://media-b:8020", error="ConnectError: refused")
    groups = [GroupInfo("fd:turns", "brain", 2, 1, 12, 500), None]
    console = Console(record=True, width=200)
    console.print(render([media, down], [recorder], groups))
    out = console.export_text()
    assert "cascade=3, deepgram-agent=1" in out
    assert "ConnectError: refused" in out
    assert "fd:turns" in out and " 12 " in out
    assert " 17 " in out


def test_log_level_per_service() -> None:
    settings = Settings(log_level="INFO", log_levels="media=warning, brain=DEBUG")
    assert level_for("media", settings) == "WARNING"
    assert level_for("brain", settings) == "DEBUG"
    assert level_for("tools", settings) == "INFO"
