"""Per-tenant conversation knobs (turn-taking and keys); unset ones use the platform default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from shared.runtime.settings import Settings


class ConversationKnobs(BaseModel):
    """What a business may tune about how its agent takes turns (None = platform default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    barge_in_min_words: int | None = Field(
        None, ge=1, le=10, description="Words (not backchannels) that interrupt the agent."
    )
    barge_in_min_speech_ms: int | None = Field(
        None, ge=100, le=5000, description="Continuous caller speech that interrupts the agent."
    )
    dtmf_transfer_digit: str | None = Field(
        None, pattern=r"^[0-9*#]$", description="Key that asks for a person."
    )
    silence_reprompt_s: float | None = Field(
        None, gt=0, le=120, description="Caller silence before a reprompt."
    )
    silence_hangup_s: float | None = Field(
        None, gt=0, le=300, description="Further silence before goodbye."
    )
    filler_delay_s: float | None = Field(
        None, gt=0, le=30, description="Agent silence after a caller turn before a filler."
    )
    first_phrase_words: int | None = Field(
        None,
        ge=0,
        le=12,
        description="Whole words of a reply spoken before its first sentence ends (0: none).",
    )
    filler_phrases: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(
        None,
        max_length=10,
        description="Fillers in the tenant's language ([] = none; unset: the language's default).",
    )


@dataclass(frozen=True)
class EffectiveKnobs:
    """The knobs in force for one call: the tenant's, else the platform's."""

    barge_in_min_words: int
    barge_in_min_speech_ms: int
    dtmf_transfer_digit: str
    silence_reprompt_s: float
    silence_hangup_s: float
    filler_delay_s: float
    first_phrase_words: int


def effective(knobs: ConversationKnobs, settings: Settings) -> EffectiveKnobs:
    """Resolve a tenant's knobs against the platform defaults."""
    return EffectiveKnobs(
        barge_in_min_words=knobs.barge_in_min_words or settings.barge_in_min_words,
        barge_in_min_speech_ms=knobs.barge_in_min_speech_ms or settings.barge_in_min_speech_ms,
        dtmf_transfer_digit=knobs.dtmf_transfer_digit or settings.dtmf_transfer_digit,
        silence_reprompt_s=knobs.silence_reprompt_s or settings.silence_reprompt_s,
        silence_hangup_s=knobs.silence_hangup_s or settings.silence_hangup_s,
        filler_delay_s=knobs.filler_delay_s or settings.filler_delay_s,
        first_phrase_words=settings.reply_first_phrase_words
        if knobs.first_phrase_words is None
        else knobs.first_phrase_words,  # 0 is a choice (a sentence first), not "unset"
    )
