"""ElevenLabs Conversational AI wire protocol for the `elevenlabs-agent` pipeline (no call state).

Why raw `websockets` and not the SDK's `Conversation`: elevenlabs 2.78's `Conversation` is
synchronous (a thread per session, `websockets.sync`), and `AsyncConversation` hides what a
telephony bridge needs: it hands audio to an `AsyncAudioInterface` without the `event_id` of
the response it belongs to, reports `interruption` without its `event_id`, runs client tools
only as registered Python callables, and connects with `websockets.connect(url)` without an
SSL context (so `PROVIDER_CA_FILE` cannot apply). This module speaks the documented protocol
(the same messages the SDK sends) and uses the SDK for what it offers: the signed-URL REST call
(`conversational_ai.conversations.get_signed_url`) and `build_ws_url` for the public URL.
"""

from __future__ import annotations

import base64
import json
import ssl
from typing import Any

import httpx
from elevenlabs.client import AsyncElevenLabs
from elevenlabs.core.api_error import ApiError
from elevenlabs.url_utils import build_ws_url

from services.media.agent_speech.tts_protocol import split_voice
from services.media.provider_clients import http_base
from services.media.voice_agents.resume import Resumed, reconnected_prompt
from shared.contract import events as ev
from shared.runtime.settings import Settings

PROVIDER = "elevenlabs-agent"
AUDIO_FORMAT = "ulaw_8000"
MAX_MESSAGE_BYTES = 16 * 2**20


class ConvaiError(RuntimeError):
    """The agent could not be reached, refused the conversation, or broke the protocol."""


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """System trust store plus `provider_ca_file` (a simulator's throwaway CA) when set."""
    ctx = ssl.create_default_context()
    if settings.provider_ca_file:
        ctx.load_verify_locations(cafile=settings.provider_ca_file)
    return ctx


def rest_base(settings: Settings) -> str:
    """Where the REST API lives (signed URLs)."""
    return settings.elevenlabs_agent_rest_url or http_base(settings.elevenlabs_convai_url)


def public_url(settings: Settings) -> str:
    """The WebSocket URL of a public agent."""
    return build_ws_url(
        settings.elevenlabs_convai_url,
        ["v1", "convai", "conversation"],
        [("agent_id", settings.elevenlabs_agent_id)],
    )


async def conversation_url(settings: Settings, tls: ssl.SSLContext) -> str:
    """The URL to open: a fresh signed URL for a private agent, else the public one."""
    if not settings.elevenlabs_agent_id:
        raise ConvaiError("ELEVENLABS_AGENT_ID is not set")
    if not settings.elevenlabs_agent_private:
        return public_url(settings)
    timeout = settings.elevenlabs_agent_connect_timeout_s
    async with httpx.AsyncClient(verify=tls, timeout=timeout, trust_env=False) as http:
        client = AsyncElevenLabs(
            api_key=settings.elevenlabs_api_key, base_url=rest_base(settings), httpx_client=http
        )
        try:
            signed = await client.conversational_ai.conversations.get_signed_url(
                agent_id=settings.elevenlabs_agent_id
            )
        except ApiError as exc:
            raise ConvaiError(f"get-signed-url failed: HTTP {exc.status_code}") from exc
        except httpx.HTTPError as exc:
            raise ConvaiError(f"get-signed-url failed: {type(exc).__name__}: {exc}") from exc
    return str(signed.signed_url)


def initiation(
    started: ev.CallStarted,
    call_sid: str,
    resumed: Resumed,
    outbound_tool_ids: list[str] | None = None,
) -> dict[str, Any]:
    """`conversation_initiation_client_data`: the tenant's prompt and greeting as overrides,
    business and caller as dynamic variables. `call_sid` rides as a dynamic variable too, so
    tools/webhooks on the ElevenLabs side (and the simulator) can tie the conversation to the
    call. A resumed call gets the conversation so far, and as its first message the reply the
    caller never heard (or none: no second greeting).

    An outbound call's agent needs `report_outcome`, which an inbound agent does not have:
    overrides cannot define tools, only pick workspace tools by id (`agent.prompt.tool_ids`,
    which must be enabled in the agent's security settings), so those ids come from settings."""
    prompt = reconnected_prompt(started.system_prompt, resumed)
    first = resumed.unheard if resumed.greeted else started.greeting
    agent: dict[str, Any] = {"first_message": first}
    prompt_override: dict[str, Any] = {"prompt": prompt} if prompt else {}
    if started.direction == "outbound" and outbound_tool_ids:
        prompt_override["tool_ids"] = list(outbound_tool_ids)
    if prompt_override:
        agent["prompt"] = prompt_override
    if started.language:
        agent["language"] = started.language
    override: dict[str, Any] = {"agent": agent}
    provider, voice = split_voice(started.voice)
    if provider == "elevenlabs" and voice:
        override["tts"] = {"voice_id": voice}
    return {
        "type": "conversation_initiation_client_data",
        "conversation_config_override": override,
        "dynamic_variables": {
            "business_name": started.business_name,
            "caller_number": started.from_number,
            "call_sid": call_sid,
        },
    }


def parse(frame: str | bytes) -> dict[str, Any]:
    """One server message (text JSON with a string `type`)."""
    if isinstance(frame, bytes):
        raise ConvaiError("unexpected binary frame from the agent")
    try:
        data = json.loads(frame)
    except json.JSONDecodeError as exc:
        raise ConvaiError("agent sent a frame that is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ConvaiError("agent sent a message without a type")
    return data


def event_of(message: dict[str, Any], key: str) -> dict[str, Any]:
    """The `<x>_event` object of a server message."""
    value = message.get(key)
    if not isinstance(value, dict):
        raise ConvaiError(f"{message['type']} without {key!r}")
    return value


def audio_chunk(audio: bytes) -> str:
    """Caller audio (µ-law 8 kHz, the agent's user_input_audio_format)."""
    return json.dumps({"user_audio_chunk": base64.b64encode(audio).decode("ascii")})


def user_message(text: str) -> str:
    """A typed user turn (the gateway's voicemail cue: the agent answers it like speech)."""
    return json.dumps({"type": "user_message", "text": text})


def pong(event_id: Any) -> str:
    return json.dumps({"type": "pong", "event_id": event_id})


def tool_result(tool_call_id: str, result: str, is_error: bool) -> str:
    return json.dumps(
        {
            "type": "client_tool_result",
            "tool_call_id": tool_call_id,
            "result": result,
            "is_error": is_error,
        }
    )
