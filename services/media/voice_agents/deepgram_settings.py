"""The Deepgram Voice Agent `Settings` message for one call (pure: no I/O).

Prompt, greeting and keyterms come from `call.started` (the gateway built them from the
tenant); the functions are FrontDesk's tools (`shared.tenancy.tool_specs`), all client-side (no
`endpoint`), so every call comes back to us as a `FunctionCallRequest`; listen/think/speak
providers come from settings; audio is µ-law 8 kHz both ways (Twilio's format, no container).
The CallSid rides in `tags` (a real Settings field), which is how the simulator matches a
socket to the caller simulator's script.
"""

from __future__ import annotations

from typing import Any

from deepgram.agent.v1.types.agent_v1settings import AgentV1Settings

from services.media.agent_speech.tts_protocol import split_voice
from services.media.voice_agents.resume import Resumed, reconnected_prompt
from shared.contract import events as ev
from shared.runtime.settings import Settings
from shared.tenancy.tool_specs import openai_tools

TWILIO_AUDIO = {"encoding": "mulaw", "sample_rate": 8000}


def agent_functions() -> list[dict[str, Any]]:
    """FrontDesk's tools as Voice Agent functions (name, description, JSON-schema parameters)."""
    functions: list[dict[str, Any]] = []
    for tool in openai_tools():
        spec = tool["function"]
        functions.append(
            {
                "name": spec["name"],
                "description": spec["description"],
                "parameters": spec["parameters"],
            }
        )
    return functions


def speak_model(started: ev.CallStarted, settings: Settings) -> str:
    """The number's Aura voice, or the configured default (the agent speaks Deepgram voices)."""
    provider, voice = split_voice(started.voice)
    return voice if provider == "deepgram" and voice else settings.deepgram_agent_speak_model


def agent_prompt(started: ev.CallStarted) -> str:
    """The tenant's prompt plus the caller's number (the agent needs it to book)."""
    caller = f"\n\nThe caller is calling from {started.from_number}." if started.from_number else ""
    return started.system_prompt + caller


def settings_message(
    started: ev.CallStarted, settings: Settings, resumed: Resumed | None = None
) -> AgentV1Settings:
    """The Settings message, validated against the SDK's schema. A call that moved here
    (`resumed`) gets the conversation so far in the prompt and, instead of the greeting, the
    reply the caller never heard (or nothing)."""
    resumed = resumed or Resumed()
    language = started.language or "en"
    listen: dict[str, Any] = {
        "type": "deepgram",
        "version": "v1",
        "model": settings.deepgram_agent_listen_model,
        "language": language,
    }
    if started.keyterms:
        listen["keyterms"] = list(started.keyterms)
    agent: dict[str, Any] = {
        "listen": {"provider": listen},
        "think": {
            "provider": {
                "type": settings.deepgram_agent_think_provider,
                "model": settings.deepgram_agent_think_model,
                "temperature": settings.llm_temperature,
            },
            "prompt": reconnected_prompt(agent_prompt(started), resumed),
            "functions": agent_functions(),
        },
        "speak": {"provider": {"type": "deepgram", "model": speak_model(started, settings)}},
    }
    greeting = resumed.unheard if resumed.greeted else started.greeting
    if greeting:
        agent["greeting"] = greeting
    return AgentV1Settings.model_validate(
        {
            "type": "Settings",
            "tags": [started.call_sid],
            "audio": {"input": TWILIO_AUDIO, "output": {**TWILIO_AUDIO, "container": "none"}},
            "agent": agent,
        }
    )
