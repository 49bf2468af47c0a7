"""Picks a call's TTS adapter: the provider's WebSocket stream with its REST fallback."""

from __future__ import annotations

from services.media.agent_speech.tts_deepgram import DeepgramTts
from services.media.agent_speech.tts_elevenlabs import ElevenLabsTts
from services.media.agent_speech.tts_protocol import TTS_PROVIDERS, TtsStream, UnknownTtsProvider
from services.media.agent_speech.tts_rest_fallback import (
    DeepgramRestSynth,
    ElevenLabsRestSynth,
    FallbackTts,
    RestSynth,
    RestTts,
)
from services.media.provider_clients import ProviderClients, local_speech_settings
from shared.runtime.settings import Settings


def make_tts(
    settings: Settings, provider: str, voice: str, clients: ProviderClients | None = None
) -> TtsStream:
    """The provider's WebSocket adapter, falling back to its REST endpoint when the socket
    cannot connect or dies mid-call. `voice` is the number's voice ('' = provider default)."""
    primary: TtsStream
    synth: RestSynth
    provider_clients = clients or ProviderClients(settings)
    if provider == "deepgram":
        primary = DeepgramTts(settings, voice, provider_clients)
        synth = DeepgramRestSynth(settings, voice, provider_clients)
    elif provider == "local":  # the speech service speaks Aura: Deepgram's adapters, its URL
        local = local_speech_settings(settings)
        primary = DeepgramTts(local, voice, provider_clients)
        synth = DeepgramRestSynth(local, voice, provider_clients)
    elif provider == "elevenlabs":
        primary = ElevenLabsTts(settings, voice, provider_clients)
        synth = ElevenLabsRestSynth(settings, voice, provider_clients)
    else:
        raise UnknownTtsProvider(
            f"unknown TTS provider {provider!r} (expected one of {', '.join(TTS_PROVIDERS)})"
        )
    return FallbackTts(primary, RestTts(synth), provider=provider)


def make_rest_synth(
    settings: Settings, provider: str, voice: str, clients: ProviderClients | None = None
) -> RestSynth:
    """The provider's REST synthesis (one request per text), for audio made off the call's
    own socket: the fillers' phrase cache (issue 17)."""
    if provider == "elevenlabs":
        return ElevenLabsRestSynth(settings, voice, clients)
    if provider == "deepgram":
        return DeepgramRestSynth(settings, voice, clients)
    if provider == "local":  # the speech service's Aura-compatible REST endpoint
        return DeepgramRestSynth(local_speech_settings(settings), voice, clients)
    raise UnknownTtsProvider(
        f"unknown TTS provider {provider!r} (expected one of {', '.join(TTS_PROVIDERS)})"
    )
