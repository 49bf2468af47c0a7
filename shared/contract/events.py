"""Every event a call's log can hold: the readable contract between the five services.

An entry in a Redis stream has two fields: ``type`` (for cheap filtering) and ``e`` (the whole
envelope as JSON). The envelope carries the schema version, the event type, the call and tenant,
a monotonic and a wall-clock timestamp, the W3C ``traceparent`` and the typed payload.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.contract.conversation_knobs import ConversationKnobs

SCHEMA_VERSION = 1


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: int = SCHEMA_VERSION
    call_sid: str
    tenant_id: str = ""
    at: float = Field(default_factory=time.time, description="Wall-clock time, epoch seconds.")
    mono_ns: int = Field(default_factory=time.monotonic_ns, description="Writer's monotonic ns.")
    traceparent: str | None = None


# ---- lifecycle -------------------------------------------------------------------------------
class CallStarted(_Event):
    """The gateway accepted a call for a tenant; carries what the other services need."""

    type: Literal["call.started"] = "call.started"
    from_number: str
    to_number: str
    direction: Literal["inbound", "outbound"] = "inbound"
    pipeline: str = "cascade"
    business_name: str = ""
    greeting: str = ""
    system_prompt: str = ""
    voice: str = ""
    language: str = "en"
    keyterms: list[str] = Field(default_factory=list, description="Words STT should favour.")
    transfer_number: str = ""
    max_call_s: int = 900
    conversation: ConversationKnobs = Field(default_factory=ConversationKnobs)
    recording: bool = Field(False, description="Media records this call (tenant setting).")
    speech: Literal["vendor", "local"] = Field(
        "vendor", description="'local': the self-hosted speech service hears and speaks (tenant)."
    )


class StreamStarted(_Event):
    """A media replica took the call's Media Stream."""

    type: Literal["stream.started"] = "stream.started"
    stream_sid: str
    replica: str


class CallEnded(_Event):
    """The call is over (caller hung up, agent ended it, or an error)."""

    type: Literal["call.ended"] = "call.ended"
    reason: str
    duration_s: float


MEDIA_ERROR = "media-error"
"""`call.ended` reason prefix of a media session that failed on its own ("media-error:
<exception>"): after-stream treats it like a provider failure (transfer or apologise)."""


# ---- caller side -----------------------------------------------------------------------------
class SpeechStarted(_Event):
    """Voice activity began (STT VAD)."""

    type: Literal["caller.speech_started"] = "caller.speech_started"
    audio_ms: int


class TranscriptInterim(_Event):
    """A partial transcript that may still change."""

    type: Literal["transcript.interim"] = "transcript.interim"
    text: str
    audio_start_ms: int
    audio_end_ms: int


class TranscriptFinal(_Event):
    """A final transcript of a span of caller audio."""

    type: Literal["transcript.final"] = "transcript.final"
    text: str
    audio_start_ms: int
    audio_end_ms: int
    speech_final: bool = False


class Dtmf(_Event):
    """The caller pressed a key."""

    type: Literal["caller.dtmf"] = "caller.dtmf"
    digit: str


class BargeIn(_Event):
    """The caller talked over the agent: Twilio's buffer was cleared and the turn's TTS and LLM
    work cancelled. `heard_text` is what the caller actually heard of that turn (mark echoes)."""

    type: Literal["caller.barge_in"] = "caller.barge_in"
    turn_id: int
    trigger: str
    trigger_at: float = Field(description="Wall-clock time of the event that triggered it.")
    heard_text: str
    cleared_marks: list[str]
    trigger_audio_ms: int | None = Field(
        None, description="Caller audio time (ms since the stream began) the decision was made at."
    )
    filler_only: bool = Field(
        False,
        description="Only a filler was cut (issue 17): the turn's reply is not cancelled (a "
        "newer caller turn supersedes it, or it follows a false interrupt).",
    )


class FalseInterrupt(_Event):
    """An interrupt made on the caller's voice onset, before any word, was wrong: only
    backchannels ("mhm", "okay") or no words (a cough) followed. Nothing new was said, so the
    cut turn may be re-spoken; that utterance is not a turn. `trigger_audio_ms`: caller audio
    time of the interrupt; `words`: what STT heard (empty: none); `respoken`: segments of the
    cut turn spoken again (0: none could be)."""

    type: Literal["caller.false_interrupt"] = "caller.false_interrupt"
    turn_id: int
    trigger_audio_ms: int
    words: str
    respoken: int = 0
    resumed_from_ms: int = Field(
        0,
        ge=0,
        description="Where the first re-spoken segment went on from: ms of its audio the caller"
        " had already heard, less a short rewind (0: said again from its start).",
    )


class TurnRequested(_Event):
    """The caller finished an utterance; the brain should answer it."""

    type: Literal["turn.requested"] = "turn.requested"
    turn_id: int
    text: str
    source: Literal["caller", "system"] = Field(
        "caller",
        description="system: a cue for the agent no caller said (the answering machine's beep);"
        " it is no transcript line.",
    )


class TurnPreempted(_Event):
    """The caller has probably finished (a stable interim transcript and the voice stopped):
    the brain may start the reply to `text` before STT's final. Nothing of it is spoken and
    no tool call of it runs until a `TurnRequested` of the same turn confirms the words (issue
    17); the work item on the turns stream is published with this event, not the request."""

    type: Literal["turn.preempted"] = "turn.preempted"
    turn_id: int
    text: str


class PreemptResolved(_Event):
    """What became of a preemptive reply once the final transcript came: `used` when the
    normalised words matched (the reply already streaming was spoken), else it was cancelled
    unheard and the turn answered again; its tokens are then wasted (usage `wasted_*`)."""

    type: Literal["turn.preempt_resolved"] = "turn.preempt_resolved"
    turn_id: int
    used: bool
    preempt_text: str
    final_text: str
    reason: str = Field("", description="matched | words changed | superseded | no final")
    wasted_prompt_tokens: int = 0
    wasted_completion_tokens: int = 0


# ---- agent side ------------------------------------------------------------------------------
class AgentText(_Event):
    """A speakable chunk of the agent's reply (a sentence or clause), in order within a turn."""

    type: Literal["agent.text"] = "agent.text"
    turn_id: int
    seq: int
    text: str


class AgentFiller(_Event):
    """Media spoke a short filler ("One moment.") from the phrase cache because the reply to
    a confirmed caller turn was slow: nothing of it said `delay` after the turn, or a tool
    call pending with nothing to say (issue 17). Not said by the LLM: the brain's history
    leaves it out; its audio segment (`seq` < 0, `audio.segment_sent.filler`) is accounted
    by marks like any other, and only a played one is a transcript line (kind `filler`)."""

    type: Literal["agent.filler"] = "agent.filler"
    turn_id: int
    seq: int = Field(description="Negative: -1 for a turn's first filler, -2 for its second.")
    text: str
    reason: Literal["slow_reply", "tool_pending"] = "slow_reply"
    waited_ms: int = Field(0, description="Quiet time on the agent's side when it fired.")


class AgentTurnDone(_Event):
    """The brain has written every chunk of this turn's reply."""

    type: Literal["agent.turn_done"] = "agent.turn_done"
    turn_id: int
    chunks: int
    end_call: bool = False


class ToolRequested(_Event):
    """The LLM asked for a function call."""

    type: Literal["tool.requested"] = "tool.requested"
    turn_id: int
    tool_call_id: str
    name: str
    arguments: str
    deadline_at: float = Field(
        0.0,
        description="Wall-clock epoch seconds after which the brain has given up waiting; tools "
        "commits nothing after it (0: no deadline).",
    )


class ToolResult(_Event):
    """The tools service's answer to a tool call (or the brain's stand-in when none came)."""

    type: Literal["tool.result"] = "tool.result"
    turn_id: int
    tool_call_id: str
    name: str
    ok: bool
    content: str
    by: Literal["tools", "brain-timeout"] = Field(
        "tools",
        description="Who wrote it: the tools service, or the brain when its wait ran out (a "
        "later `tools` result for the same call supersedes that stand-in).",
    )


class CallIntent(_Event):
    """How the call should end, decided by a tool (end_call, transfer_to_human) or a keypress.
    Media lets the current answer finish playing, then closes the stream; the gateway's
    after-stream turns it into `<Hangup/>` or `<Dial>`."""

    type: Literal["call.intent"] = "call.intent"
    kind: Literal["end", "transfer"]
    target: str = ""
    reason: str = ""
    turn_id: int = Field(0, description="The agent turn whose words must be heard first.")


class SegmentSent(_Event):
    """A segment of agent audio and its mark went to Twilio."""

    type: Literal["audio.segment_sent"] = "audio.segment_sent"
    turn_id: int
    seq: int
    mark: str
    text: str
    audio_bytes: int
    cached: bool = Field(False, description="Audio came from the greeting cache, not TTS.")
    filler: bool = Field(
        False, description="A filler ('One moment.'), not part of the reply (issue 17)."
    )


class SegmentPlayed(_Event):
    """Twilio echoed a segment's mark: the caller heard that audio (or it was cleared)."""

    type: Literal["audio.segment_played"] = "audio.segment_played"
    turn_id: int
    seq: int
    mark: str
    cleared: bool = False


# ---- measurements and faults -----------------------------------------------------------------
LatencyStage = Literal[
    "speech_end",
    "stt_final",
    "llm_request",
    "llm_first_token",
    "first_speakable",
    "tts_first_byte",
    "first_audio_sent",
]


class LatencyMark(_Event):
    """When a stage of a turn happened (wall clock), for the per-turn latency breakdown."""

    type: Literal["latency.mark"] = "latency.mark"
    turn_id: int
    stage: LatencyStage
    stage_at: float


class Usage(_Event):
    """Billable usage by a provider (tokens, characters, seconds)."""

    type: Literal["usage"] = "usage"
    provider: str
    metric: str
    quantity: float


class ProviderError(_Event):
    """A provider failed or misbehaved during the call."""

    type: Literal["provider.error"] = "provider.error"
    provider: str
    message: str


# --- issue 13 part B: a stream's own end (media writes it last, on every way a stream ends) ---
class StreamEnded(_Event):
    """A Media Stream is over on this replica; `handover` when the call goes on elsewhere
    (drain): after-stream then resumes it instead of hanging up."""

    type: Literal["stream.ended"] = "stream.ended"
    stream_sid: str
    replica: str
    reason: str
    handover: bool = False


Event = Annotated[
    CallStarted
    | StreamStarted
    | CallEnded
    | SpeechStarted
    | TranscriptInterim
    | TranscriptFinal
    | Dtmf
    | TurnRequested
    | TurnPreempted
    | PreemptResolved
    | BargeIn
    | FalseInterrupt
    | CallIntent
    | AgentText
    | AgentFiller
    | AgentTurnDone
    | ToolRequested
    | ToolResult
    | SegmentSent
    | SegmentPlayed
    | LatencyMark
    | Usage
    | ProviderError
    | StreamEnded,
    Field(discriminator="type"),
]

_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


class UnknownEvent(ValueError):
    """An entry whose schema version or type this build does not know."""


def encode(event: _Event) -> dict[str, str]:
    """Stream-entry fields for an event."""
    return {"type": event_type(event), "e": event.model_dump_json()}


def decode(fields: dict[Any, Any]) -> Event:
    """Parse stream-entry fields (bytes or str) back into a typed event."""
    raw = fields.get("e", fields.get(b"e"))
    if raw is None:
        raise UnknownEvent("stream entry has no 'e' field")
    try:
        event = _ADAPTER.validate_json(raw)
    except ValueError as exc:
        raise UnknownEvent(str(exc)) from exc
    if event.v > SCHEMA_VERSION:
        raise UnknownEvent(f"schema version {event.v} is newer than {SCHEMA_VERSION}")
    return event


def type_of(cls: type[_Event]) -> str:
    """The ``type`` discriminator of an event class."""
    return str(cls.model_fields["type"].default)


def event_type(event: _Event) -> str:
    """The ``type`` discriminator of an event."""
    value: Any = getattr(event, "type")  # noqa: B009
    return str(value)
