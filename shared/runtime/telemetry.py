"""OpenTelemetry tracing; the W3C trace context rides in every stream entry."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


class JsonLinesExporter(SpanExporter):
    """Appends finished spans to a file, one JSON object per line."""

    def __init__(self, path: str) -> None:
        self._file: IO[str] = open(path, "a", encoding="utf-8")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            self._file.write(json.dumps(json.loads(span.to_json()), separators=(",", ":")) + "\n")
        self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._file.close()


def setup_tracing(
    service: str,
    *,
    console: bool = False,
    file: str | None = None,
    otlp_endpoint: str = "",
    otlp_batch_delay_ms: int = 2000,
) -> TracerProvider:
    """Install a tracer provider for this process (once).

    With `otlp_endpoint` (OTEL_EXPORTER_OTLP_ENDPOINT, an OTLP/HTTP collector base URL) spans
    are batched and exported to `{endpoint}/v1/traces`; the provider flushes at exit.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": f"frontdesk-{service}"}))
    if console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    if file:
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(file)))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
        provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=otlp_batch_delay_ms)
        )
    trace.set_tracer_provider(provider)
    return provider


def current_trace_id() -> str | None:
    """The hex trace id of the active span, if any (for log lines)."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def start_child_span(
    name: str, traceparent: str | None, attributes: dict[str, str | int | float]
) -> trace.Span:
    """A span (not made current) whose parent is the span named by `traceparent`; end it
    yourself. For work that spans awaits in generators or batches of several calls."""
    return trace.get_tracer(__name__).start_span(
        name, context=context_from(traceparent) if traceparent else None, attributes=attributes
    )


def tracer(name: str) -> trace.Tracer:
    """A tracer for one module."""
    return trace.get_tracer(name)


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span, if any."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def context_from(traceparent: str | None) -> otel_context.Context:
    """A context whose parent is the span named by `traceparent` (empty if None)."""
    if not traceparent:
        return otel_context.Context()
    return _PROPAGATOR.extract({"traceparent": traceparent})
