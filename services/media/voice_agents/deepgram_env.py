"""Deepgram SDK client pointed at a configurable base URL (real Deepgram or the simulator)."""

from __future__ import annotations

from deepgram import AsyncDeepgramClient
from deepgram.environment import DeepgramClientEnvironment


def deepgram_client(api_key: str, ws_base: str) -> AsyncDeepgramClient:
    """A client whose WebSocket base is `ws_base` (ws:// or wss://)."""
    http_base = ws_base.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    env = DeepgramClientEnvironment(
        base=http_base, production=ws_base, agent=ws_base, agent_rest=http_base
    )
    return AsyncDeepgramClient(api_key=api_key, environment=env)
