"""Greeting audio synthesized once per (voice, text) and kept in Redis, so the next call's
greeting starts playing the moment the stream starts."""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

TTL_S = 7 * 24 * 3600


def cache_key(voice: str, text: str) -> str:
    """Redis key of one greeting's µ-law audio."""
    digest = hashlib.sha256(f"{voice}|{text}".encode()).hexdigest()[:32]
    return f"fd:greeting:{digest}"


class GreetingCache:
    """Binary-safe get/put of greeting audio."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis  # a client WITHOUT decode_responses

    async def get(self, voice: str, text: str) -> bytes | None:
        """The cached audio, or None."""
        value = await self._redis.get(cache_key(voice, text))
        if isinstance(value, str):
            return value.encode("latin-1")
        return bytes(value) if value else None

    async def put(self, voice: str, text: str, audio: bytes) -> None:
        """Remember the audio for a week."""
        if audio:
            await self._redis.set(cache_key(voice, text), audio, ex=TTL_S)
