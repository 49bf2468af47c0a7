"""The greeting and phrase cache as media uses it: best effort.

Cached audio only saves a TTS request; it must never end a call. Without this, a Redis restart
made every reply spoken while Redis was away fail its call: the TTS pump's `put` (and a
phrase's `get`) raised, the call ended `provider-error` and after-stream sent the caller to a
human (6 of 20 calls in the fault suite's 20-call Redis restart). While Redis is away a lookup
is a miss (TTS speaks the phrase) and a store is skipped; the outage is logged once.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.media.agent_speech.greeting_cache import GreetingCache
from shared.runtime.outage import Outage

log = logging.getLogger(__name__)


class BestEffortPhrases(GreetingCache):
    """`GreetingCache` whose Redis errors are misses (get) and no-ops (put)."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis)
        self._outage = Outage("redis (greeting and phrase cache)", log)

    async def get(self, voice: str, text: str) -> bytes | None:
        try:
            found = await super().get(voice, text)
        except (RedisError, OSError) as exc:
            self._outage.failed(exc)
            return None
        self._outage.recovered()
        return found

    async def put(self, voice: str, text: str, audio: bytes) -> None:
        try:
            await super().put(voice, text, audio)
        except (RedisError, OSError) as exc:
            self._outage.failed(exc)
            return
        self._outage.recovered()
