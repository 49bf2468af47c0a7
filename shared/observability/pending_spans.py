"""Spans of provider requests that are answered later on another task (a TTS request: text
sent on one task, its first audio read on another): opened on send, ended on the first answer."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from opentelemetry import trace

from shared.runtime.telemetry import tracer

_tracer = tracer(__name__)

PENDING_LIMIT = 16
"""Requests awaiting an answer at once; older ones are ended unanswered (e.g. cleared audio)."""


class PendingSpans:
    """Open request spans by key, ended by `answered` (bounded, no I/O)."""

    def __init__(
        self, name: str, limit: int = PENDING_LIMIT, spans: trace.Tracer | None = None
    ) -> None:
        self.name = name
        self.limit = limit
        self.tracer = spans or _tracer
        self._open: OrderedDict[Hashable, trace.Span] = OrderedDict()

    def sent(self, key: Hashable, attributes: dict[str, str | int]) -> None:
        """A request went out (child of the current span)."""
        self._open[key] = self.tracer.start_span(self.name, attributes=attributes)
        while len(self._open) > self.limit:
            _, span = self._open.popitem(last=False)
            span.set_attribute("request.answered", False)
            span.end()

    def answered(self, key: Hashable) -> None:
        """The request's first answer arrived."""
        span = self._open.pop(key, None)
        if span is not None:
            span.set_attribute("request.answered", True)
            span.end()

    def __len__(self) -> int:
        return len(self._open)
