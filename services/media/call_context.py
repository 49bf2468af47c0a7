"""What the parts of one call share: identity, turn numbering, and writing to the call log."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from prometheus_client import Histogram

from services.media.provider_clients import ProviderClients
from shared.bus.append_buffer import OrderedAppender
from shared.bus.mux import StreamMux
from shared.bus.streams import CallLog
from shared.contract import events as ev
from shared.contract.conversation_knobs import EffectiveKnobs, effective
from shared.observability.metrics import Metrics
from shared.observability.pending_spans import PendingSpans
from shared.observability.turn_stages import StageClock
from shared.recordings.store import RecordingStore
from shared.runtime.settings import Settings

FRAME_MS = 20
FRAME_TIMES_KEPT = 500
"""Arrival times of the last 10 s of caller frames (speech end is looked up within seconds)."""


@dataclass
class MediaDeps:
    """What every call session on this replica shares."""

    settings: Settings
    log: CallLog
    mux: StreamMux
    replica: str
    inbound_forward_s: Histogram | None = None  # Twilio frame received -> written to STT
    outbound_forward_s: Histogram | None = None  # TTS audio chunk -> written to Twilio
    greetings: object | None = None  # GreetingCache (typed loosely to avoid an import cycle)
    vad_model: object | None = None  # VadModel shared by every call on this replica
    clients: ProviderClients | None = None  # provider SDK/HTTP clients shared by every call
    metrics: Metrics = field(default_factory=Metrics)  # this replica's Prometheus metrics
    recordings: RecordingStore | None = None  # call recordings (issue 16); None: off


@dataclass
class CallContext:
    """One call's identity and counters; every part appends to the log through it."""

    deps: MediaDeps
    call_sid: str
    stream_sid: str
    started: ev.CallStarted
    start_received_at: float
    turn_id: int = 0
    latest_caller_turn: int = 0
    frame_times: deque[float] = field(default_factory=lambda: deque(maxlen=FRAME_TIMES_KEPT))
    frames_received: int = 0
    end_reason: str | None = None
    appends: OrderedAppender | None = field(default=None, repr=False)
    """Holds this call's appends in order while Redis is away (made on first use)."""
    stages: StageClock = field(default_factory=StageClock)  # turn stage timings (metrics)
    tts_requests: PendingSpans = field(default_factory=lambda: PendingSpans("tts.request"))
    call_settings: Settings | None = None
    """This call's settings when they differ from the replica's (a tenant on local speech)."""

    @property
    def knobs(self) -> EffectiveKnobs:
        """This tenant's turn-taking knobs, platform defaults filled in."""
        return effective(self.started.conversation, self.deps.settings)

    @property
    def settings(self) -> Settings:
        """This call's settings: the replica's, with the speech service's URLs for a tenant on
        `speech: local` (`provider_clients.speech_for_call`)."""
        return self.call_settings or self.deps.settings

    def next_turn(self) -> int:
        """A new turn id (caller turns and agent-initiated turns share one sequence)."""
        self.turn_id += 1
        return self.turn_id

    def wall_at(self, audio_ms: int) -> float:
        """When the caller frame holding `audio_ms` arrived (wall clock)."""
        if not self.frame_times:
            return time.time()
        first_kept = self.frames_received - len(self.frame_times)
        index = audio_ms // FRAME_MS - first_kept
        if index < 0:  # older than the window: extrapolate back from its oldest frame
            return self.frame_times[0] + index * FRAME_MS / 1000
        return self.frame_times[min(index, len(self.frame_times) - 1)]

    def frame_arrived(self, at: float) -> None:
        """Note when a caller frame arrived (a bounded window: long calls use no more memory)."""
        self.frame_times.append(at)
        self.frames_received += 1

    async def append(self, event: ev.Event) -> str:
        """Write an event to this call's log (tenant filled in)."""
        if not event.tenant_id and self.started.tenant_id:
            event = event.model_copy(update={"tenant_id": self.started.tenant_id})
        if isinstance(event, ev.ProviderError):
            self.deps.metrics.provider_errors.labels(event.provider).inc()
        if self.appends is None:
            self.appends = OrderedAppender(self.deps.log, self.settings.media_append_buffer)
        return await self.appends.append(event)  # "" if queued during a Redis outage

    def stage_mark(self, turn_id: int, mark: str, at: float) -> None:
        """Note a mark of a turn; observe the stages it completes (no I/O)."""
        for stage, seconds in self.stages.mark(turn_id, mark, at):
            self.deps.metrics.stage(stage, seconds)

    async def append_then_publish(
        self, event: ev.Event, stream: str, fields: dict[str, str]
    ) -> str:
        """`append`, then publish a work item about the event (one round trip, in order);
        queued with the call's other appends while Redis is away (a caller's turn written in
        a blip must not end the call)."""
        if not event.tenant_id and self.started.tenant_id:
            event = event.model_copy(update={"tenant_id": self.started.tenant_id})
        if self.appends is None:
            self.appends = OrderedAppender(self.deps.log, self.settings.media_append_buffer)
        return await self.appends.append(event, (stream, fields))

    async def latency(self, turn_id: int, stage: ev.LatencyStage, at: float) -> None:
        """Record when a stage of a turn happened."""
        self.stage_mark(turn_id, stage, at)
        await self.append(
            ev.LatencyMark(call_sid=self.call_sid, turn_id=turn_id, stage=stage, stage_at=at)
        )
