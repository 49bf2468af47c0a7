"""The tenant's filler phrases (issue 17): its own list, else its language's default."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.media.agent_speech.filler import DEFAULT_PHRASES, phrases_for
from shared.contract.conversation_knobs import ConversationKnobs, effective
from shared.runtime.settings import Settings
from shared.tenancy.tenant_spec import AssistantSpec


def test_the_language_default_unless_the_tenant_writes_its_own() -> None:
    assert phrases_for(ConversationKnobs(), "en") == list(DEFAULT_PHRASES["en"])
    assert phrases_for(ConversationKnobs(), "es-MX") == list(DEFAULT_PHRASES["es"])
    assert phrases_for(ConversationKnobs(), "tlh") == []  # no default: no filler
    own = ConversationKnobs(filler_phrases=["Un attimo.", "  "])
    assert phrases_for(own, "en") == ["Un attimo."]
    assert phrases_for(ConversationKnobs(filler_phrases=[]), "en") == []  # switched off


def test_the_delay_is_the_tenants_else_the_platforms() -> None:
    settings = Settings(filler_delay_s=1.2)
    assert effective(ConversationKnobs(), settings).filler_delay_s == 1.2
    assert effective(ConversationKnobs(filler_delay_s=2.5), settings).filler_delay_s == 2.5


def test_a_tenant_yaml_names_bad_filler_settings() -> None:
    spec = AssistantSpec.model_validate(
        {"conversation": {"filler_delay_s": 0.8, "filler_phrases": ["One sec."]}}
    )
    assert spec.conversation.filler_phrases == ["One sec."]
    for bad in ({"filler_delay_s": 0}, {"filler_phrases": ["x" * 41]}, {"filler_phrase": []}):
        with pytest.raises(ValidationError):
            AssistantSpec.model_validate({"conversation": bad})


@pytest.mark.parametrize(
    "knobs",
    [
        {"filler_delay_s": 1000},  # a "filler" after a quarter of an hour
        {"filler_delay_s": 0},
        {"filler_phrases": ["One moment."] * 11},  # more phrases than a call could use
        {"filler_phrases": ["x" * 41]},  # longer than a cached phrase
        {"filler_phrases": [""]},
    ],
)
def test_hostile_filler_knobs_are_refused(knobs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ConversationKnobs.model_validate(knobs)


def test_the_opening_phrase_is_the_tenants_else_the_platforms_and_zero_turns_it_off() -> None:
    settings = Settings(reply_first_phrase_words=3)
    assert effective(ConversationKnobs(), settings).first_phrase_words == 3
    assert effective(ConversationKnobs(first_phrase_words=5), settings).first_phrase_words == 5
    assert effective(ConversationKnobs(first_phrase_words=0), settings).first_phrase_words == 0
    for bad in (-1, 13):
        with pytest.raises(ValidationError):
            ConversationKnobs(first_phrase_words=bad)
