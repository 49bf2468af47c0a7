"""Data model of the simulated Twilio caller: options, scripts and the call record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, Field


class TwilioCallerOptions(BaseModel):
    """How to reach the platform and how the simulated caller behaves."""

    gateway_url: str = Field(
        "http://127.0.0.1:8000",
        description="Gateway base URL; the webhook is {gateway}/twilio/voice.",
    )
    voice_path: str = Field(
        "/twilio/voice", description="Path of the voice webhook on the gateway."
    )
    auth_token: str = Field(
        "test-auth-token", description="Twilio auth token used to sign requests."
    )
    account_sid: str = Field(
        "AC" + "0" * 32, description="AccountSid sent in the webhook and the start message."
    )
    from_number: str = Field("+447700900123", description="Caller's number (From/Caller).")
    to_number: str = Field("+442071838750", description="Dialled number (To/Called).")
    call_sid: str | None = Field(None, description="CallSid to use; random CA+32 hex if None.")
    stt_control_url: str | None = Field(
        None, description="STT simulator base URL for /sim/listen/script; no scripting if None."
    )
    extra_control_urls: list[str] = Field(
        default_factory=list,
        description="More simulators the same /sim/listen/script lines go to (the voice-agent"
        " simulators, when the platform may route the call to one).",
    )
    tts_url: str | None = Field(
        None,
        description="Aura-compatible TTS (ws://host:port): the caller speaks its lines as real"
        " synthesised speech and registers nothing with the STT simulator.",
    )
    tts_api_key: str | None = Field(None, description="Key sent to the caller's TTS, if any.")
    ms_per_word: int = Field(300, description="Speaking duration of one scripted word, in ms.")
    pause_before_speaking_ms: int = Field(
        400, description="Wait after the agent's audio finished playing before talking, in ms."
    )
    max_call_s: float = Field(60.0, description="Hang up (and report an error) after this long.")
    answer_timeout_s: float = Field(
        15.0, description="Give up if the agent does not start/finish its turn within this."
    )
    http_timeout_s: float = Field(15.0, description="Timeout of each HTTP request we make.")


@dataclass(frozen=True)
class Dtmf:
    """A caller turn made of keypresses instead of speech."""

    digits: str
    interval_ms: int = 200  # gap between two digits


@dataclass(frozen=True)
class SpeakOver:
    """Talk while the agent's audio is still playing: a barge-in, or a backchannel ("mhm")
    after which the agent is expected to carry on (``expect_interrupt=False``)."""

    text: str
    after_ms: int = 600  # of this agent turn's audio played before the caller starts
    expect_interrupt: bool = True


@dataclass(frozen=True)
class Silence:
    """Stay silent this long after the agent's turn (the next line waits for the agent)."""

    seconds: float


@dataclass(frozen=True)
class Misheard:
    """A line STT's interim results get wrong (`interim_text`, as many words) and its final
    gets right (`text`): a preemptive reply started from the interim must be discarded."""

    text: str
    interim_text: str


ScriptLine = str | Dtmf | SpeakOver | Silence | Misheard


@dataclass
class CallScript:
    """What the caller says, turn by turn. Each line waits for the agent's turn first, except
    a SpeakOver, which starts while the agent is still talking."""

    lines: list[ScriptLine]
    hangup_after_last: bool = True  # else wait (up to max_call_s) for the server to hang up
    wait_for_last_answer: bool = True  # False: hang up as soon as the last line is said


EventDirection = Literal["sent", "recv", "info"]


@dataclass(frozen=True)
class CallEvent:
    """One entry of the call log; ``t_ms`` is ms since place_call started."""

    t_ms: float
    direction: EventDirection
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        arrow = {"sent": "->", "recv": "<-", "info": "--"}[self.direction]
        body = " ".join(f"{k}={v!r}" for k, v in self.data.items())
        return f"{self.t_ms / 1000:8.3f}s {arrow} {self.kind} {body}".rstrip()


@dataclass(frozen=True)
class SpokenLine:
    """A caller turn and where it sits in stream audio time (ms since the first frame)."""

    text: str
    kind: Literal["speech", "dtmf"]
    start_ms: int
    end_ms: int


class AgentSegment(NamedTuple):
    """Agent audio between marks: the closing mark (None = unmarked tail), the audio and
    whether it fully played (False = cut by clear, None = still pending at the end)."""

    mark: str | None
    audio: bytes
    played: bool | None


@dataclass
class CallResult:
    """Everything observed during one simulated call."""

    call_sid: str
    account_sid: str
    stream_sid: str | None = None
    webhook_status: int | None = None
    twiml: str = ""
    stream_url: str | None = None
    action_url: str | None = None
    custom_parameters: dict[str, str] = field(default_factory=dict)
    events: list[CallEvent] = field(default_factory=list)
    agent_audio: bytes = b""  # all audio received, in order
    agent_played_audio: bytes = b""  # the part the playout clock actually played
    agent_segments: list[AgentSegment] = field(default_factory=list)
    caller_track: bytes = b""  # every frame the caller sent (µ-law), one per 20 ms
    agent_track: bytes = b""  # the agent's audio as it played, on the caller's timeline
    marks_echoed: list[str] = field(default_factory=list)
    clears: int = 0
    lines: list[SpokenLine] = field(default_factory=list)
    frames_sent: int = 0
    after_stream_status: int | None = None
    after_stream_twiml: str | None = None
    after_stream_twimls: list[str] = field(default_factory=list)  # every <Connect action> reply
    resumes: int = 0  # streams after the first (the after-stream TwiML said <Connect> again)
    close_code: int | None = None  # set when the server closed the socket
    close_reason: str | None = None
    hangup_by: Literal["caller", "server"] | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def events_of(self, kind: str) -> list[CallEvent]:
        return [e for e in self.events if e.kind == kind]
