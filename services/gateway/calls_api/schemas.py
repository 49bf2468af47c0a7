"""Response and request bodies of the calls, webhooks and analysis-schema routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, computed_field


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CallSummary(_Out):
    """One call in a list."""

    call_sid: str
    direction: str
    from_number: str
    to_number: str
    pipeline: str
    status: str
    end_reason: str | None
    transfer_target: str | None
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    recording_duration_s: float | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def recording_url(self) -> str | None:
        """Where the recording is served (`GET`, WAV, Range), relative to this API; null when
        the call has none (not recorded, not finished yet, or past retention)."""
        if self.recording_duration_s is None:
            return None
        return f"/v1/calls/{self.call_sid}/recording"


class TranscriptLineOut(_Out):
    """A line of the transcript; offsets are milliseconds from the call's start."""

    turn_id: int
    role: str
    text: str
    at: datetime
    start_ms: int | None
    end_ms: int | None
    kind: str = Field(
        "speech",
        description="speech, or filler: a short phrase ('One moment.') the platform played "
        "while the reply was slow; not said by the LLM",
    )


class ToolCallOut(_Out):
    """A function the agent called."""

    tool_call_id: str
    name: str
    arguments: dict[str, Any]
    ok: bool
    result: str
    error: str | None
    duration_ms: float | None


class TurnOut(BaseModel):
    """A turn and its latency waterfall: each stage in ms after the caller stopped speaking,
    and the time each component took."""

    turn_id: int
    caller_text: str
    agent_text: str
    heard_text: str
    barged_in: bool
    caller_start_ms: int | None
    caller_end_ms: int | None
    stages_ms: dict[str, float]
    components_ms: dict[str, float]


class CostLineOut(_Out):
    """quantity x unit_price_minor = amount_minor (exact decimals as strings)."""

    provider: str
    metric: str
    quantity: str
    unit_price_minor: str
    amount_minor: str
    priced: bool
    currency: str = Field("", description="ISO 4217 currency of the unit price and amount.")
    basis: str = Field(
        "vendor",
        description="What the price covers: 'vendor' (a provider's fee) or 'compute' "
        "(self-hosted speech, provider 'local': only the CPU it uses).",
    )


class CostOut(BaseModel):
    """The call's cost in minor units of `currency`."""

    currency: str
    total_minor: str
    telephony_metered: bool
    lines: list[CostLineOut]


class AnalysisOut(_Out):
    """The post-call analysis."""

    status: str
    summary: str
    success: bool | None
    fields: dict[str, Any]
    error: str | None
    model: str


class KeyPressOut(_Out):
    """A DTMF key."""

    digit: str
    at: datetime
    offset_ms: int | None


class BargeInOut(_Out):
    """The caller interrupted the answer to `turn_id`."""

    turn_id: int
    at: datetime
    offset_ms: int | None


class CallDetail(CallSummary):
    """Everything stored about one call."""

    transcript: list[TranscriptLineOut]
    turns: list[TurnOut]
    tool_calls: list[ToolCallOut]
    dtmf: list[KeyPressOut]
    barge_ins: list[BargeInOut]
    cost: CostOut | None
    analysis: AnalysisOut | None


class SearchHit(BaseModel):
    """A transcript line matching the query, best first."""

    call_sid: str
    started_at: datetime
    turn_id: int
    role: str
    text: str
    headline: str
    rank: float


class WebhookEndpointIn(BaseModel):
    """A URL to receive `call.completed` events."""

    model_config = ConfigDict(extra="forbid")
    url: HttpUrl
    description: str = Field("", max_length=500)
    active: bool = True


class WebhookEndpointPatch(BaseModel):
    """Fields of an endpoint to change."""

    model_config = ConfigDict(extra="forbid")
    url: HttpUrl | None = None
    description: str | None = Field(None, max_length=500)
    active: bool | None = None


class WebhookEndpointOut(_Out):
    """An endpoint (its secret is shown only when it is created)."""

    id: str
    url: str
    description: str
    active: bool
    created_at: datetime


class WebhookEndpointCreated(WebhookEndpointOut):
    """A new endpoint with the secret that signs its deliveries (shown this once)."""

    secret: str


DeliveryStatus = Literal["pending", "delivered", "failed"]


class DeliveryAttemptOut(_Out):
    """One HTTP attempt of a delivery."""

    attempt: int
    at: datetime
    response_code: int | None
    error: str | None
    duration_ms: float


class DeliveryOut(_Out):
    """An event for one endpoint; `failed` ones are the dead-letter list."""

    id: str
    event_id: str
    event_type: str
    endpoint_id: str
    call_sid: str | None
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    response_code: int | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryDetail(DeliveryOut):
    """A delivery with its attempt log."""

    attempt_log: list[DeliveryAttemptOut]


class AnalysisSchemaIn(BaseModel):
    """The structured fields to extract from each call, as a JSON schema of an object."""

    model_config = ConfigDict(extra="forbid")
    json_schema: dict[str, Any]
    success_criteria: str = Field("", max_length=2000)


class AnalysisSchemaOut(_Out):
    """The tenant's analysis schema."""

    json_schema: dict[str, Any]
    success_criteria: str
    updated_at: datetime
