"""Which pipeline serves a call, chosen per phone number (`call.started.pipeline`).

`cascade` (STT -> brain -> TTS) lives in `call_session.py`. Provider voice agents register a
runner here: an async function that serves the whole call on the Twilio socket and returns the
end reason. Every pipeline writes the same event types to the call log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.media.call_context import CallContext
from services.media.twilio.link import TwilioLink
from shared.contract import events as ev

AgentRunner = Callable[[CallContext, TwilioLink, list[tuple[str, ev.Event]]], Awaitable[str]]
"""(call context, Twilio socket, call log so far) -> end reason. It reads Twilio frames via
`link.receive()` (parse with `twilio_protocol.parse`) until `stop`, a close, or its own end."""

CASCADE = "cascade"


def agent_runners() -> dict[str, AgentRunner]:
    """Registered provider-agent pipelines (imported lazily: each pulls in its provider SDK)."""
    runners: dict[str, AgentRunner] = {}
    runners["elevenlabs-agent"] = _elevenlabs_agent
    runners["deepgram-agent"] = _deepgram_agent
    return runners


async def _elevenlabs_agent(
    ctx: CallContext, link: TwilioLink, history: list[tuple[str, ev.Event]]
) -> str:
    from services.media.voice_agents.elevenlabs import run_elevenlabs_agent

    return await run_elevenlabs_agent(ctx, link, history)


async def _deepgram_agent(
    ctx: CallContext, link: TwilioLink, history: list[tuple[str, ev.Event]]
) -> str:
    from services.media.voice_agents.deepgram import run_deepgram_agent

    return await run_deepgram_agent(ctx, link, history)
