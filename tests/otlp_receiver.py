"""An in-process OTLP/HTTP trace receiver: decodes the protobuf export requests the services'
OTLP exporters POST to /v1/traces and keeps the spans (name, service, trace id) for asserts."""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

MAX_BODY = 16 << 20


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    attributes: dict[str, object]


@dataclass
class OtlpReceiver:
    """Spans received so far (thread-safe); `url` is the OTEL_EXPORTER_OTLP_ENDPOINT."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    requests: int = 0
    rejected: int = 0

    def add(self, request: ExportTraceServiceRequest) -> None:
        out: list[ReceivedSpan] = []
        for resource_spans in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attrs.get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    values: dict[str, object] = {}
                    for a in span.attributes:
                        kind = a.value.WhichOneof("value")
                        values[a.key] = getattr(a.value, kind) if kind else None
                    out.append(ReceivedSpan(service, span.name, span.trace_id.hex(), values))
        with self.lock:
            self.spans.extend(out)
            self.requests += 1

    def of_trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def snapshot(self) -> list[ReceivedSpan]:
        with self.lock:
            return list(self.spans)


def _handler(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.path != "/v1/traces" or not 0 < length <= MAX_BODY:
                with receiver.lock:
                    receiver.rejected += 1
                self.send_error(404 if self.path != "/v1/traces" else 413)
                return
            body = self.rfile.read(length)
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            receiver.add(request)
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


class RunningReceiver:
    """Serve an `OtlpReceiver` on 127.0.0.1 (a free port) in a thread until `stop`."""

    def __init__(self) -> None:
        self.receiver = OtlpReceiver()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.receiver))
        self.receiver.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
