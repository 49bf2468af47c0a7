"""A tenant's speech choice (`speech: vendor | local`): the spec, what media makes of the call,
and the compute price of the self-hosted TTS (issue 15, speech15)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.media.agent_speech.tts_protocol import split_voice
from services.media.provider_clients import local_speech_settings, speech_for_call
from shared.contract import events as ev
from shared.runtime.settings import Settings
from shared.tenancy.pricing import (
    CPU_SECOND_MINOR,
    EXAMPLE_PRICES,
    LOCAL_TTS_CHARACTER,
    price_basis,
)
from shared.tenancy.tenant_spec import TenantSpec

VENDOR = Settings(
    deepgram_stt_url="wss://api.deepgram.com",
    deepgram_tts_url="wss://api.deepgram.com",
    deepgram_tts_rest_url="https://rest.example",
    deepgram_api_key="dg-key",
    speech_url="ws://speech.frontdesk.svc",
)


def started(
    speech: str, voice: str = "aura-2-thalia-en", pipeline: str = "cascade"
) -> ev.CallStarted:
    return ev.CallStarted.model_validate(
        {
            "call_sid": "CA1",
            "from_number": "+447700900123",
            "to_number": "+441632960001",
            "pipeline": pipeline,
            "voice": voice,
            "speech": speech,
        }
    )


def test_the_spec_takes_vendor_or_local_and_nothing_else() -> None:
    assert TenantSpec(slug="a", name="A").speech == "vendor"
    assert TenantSpec(slug="a", name="A", speech="local").speech == "local"
    with pytest.raises(ValidationError, match="speech"):
        TenantSpec.model_validate({"slug": "a", "name": "A", "speech": "whisper"})


def test_a_local_tenant_is_heard_and_spoken_by_the_speech_service() -> None:
    call, settings = speech_for_call(started("local"), VENDOR)
    assert (settings.deepgram_stt_url, settings.deepgram_tts_url) == (
        "ws://speech.frontdesk.svc",
        "ws://speech.frontdesk.svc",
    )
    assert settings.deepgram_tts_rest_url == ""  # derived from the speech URL, not the vendor's
    assert (settings.stt_provider, settings.tts_provider) == ("local", "local")
    assert split_voice(call.voice) == ("local", "aura-2-thalia-en")
    assert VENDOR.deepgram_stt_url == "wss://api.deepgram.com"  # the replica's own are untouched


def test_a_vendor_tenant_and_the_voice_agents_are_unchanged() -> None:
    for event in (started("vendor"), started("local", pipeline="deepgram-agent")):
        call, settings = speech_for_call(event, VENDOR)
        assert call is event and settings is VENDOR


def test_another_vendors_voice_becomes_the_local_default_voice() -> None:
    call, _ = speech_for_call(started("local", voice="elevenlabs:21m00Tcm4TlvDq8ikWAM"), VENDOR)
    assert split_voice(call.voice) == ("local", "")
    call, _ = speech_for_call(started("local", voice="deepgram:aura-2-orion-en"), VENDOR)
    assert split_voice(call.voice) == ("local", "aura-2-orion-en")


def test_the_speech_key_and_the_default_url() -> None:
    s = local_speech_settings(Settings(speech_port=8123, deepgram_api_key="dg"))
    assert (s.deepgram_stt_url, s.deepgram_api_key) == ("ws://127.0.0.1:8123", "dg")
    s = local_speech_settings(Settings(speech_api_key="own-key", deepgram_api_key="dg"))
    assert s.deepgram_api_key == "own-key"


def test_local_tts_is_priced_at_its_compute() -> None:
    price = EXAMPLE_PRICES.unit_price("local", "tts_characters")
    assert price == LOCAL_TTS_CHARACTER == CPU_SECOND_MINOR * Decimal("0.005")
    vendor = EXAMPLE_PRICES.unit_price("deepgram", "tts_characters")
    assert vendor is not None and price * 100 < vendor
    assert price_basis("local") == "compute"


def test_a_local_voice_has_a_rest_synthesis_for_the_filler_cache() -> None:
    from services.media.agent_speech.tts_factory import make_rest_synth
    from services.media.agent_speech.tts_rest_fallback import DeepgramRestSynth
    from shared.runtime.settings import Settings

    # Before the merge of fillers and speech per tenant, a local tenant's call ended at its
    # start: the filler's phrase cache knew no REST synthesis for the 'local' voice.
    assert isinstance(make_rest_synth(Settings(), "local", ""), DeepgramRestSynth)
