"""Who may serve a call's Media Stream: a token works once, one live stream per CallSid.

Two Redis keys in the call's hash slot (shared/contract/keys.py), checked and written by one
Lua script, so a claim is atomic:

- ``stream-token:<CallSid>:<token id>`` is SET NX when a stream is accepted with the token
  and lives as long as the token could still verify: any later use is refused, while the
  call is live and after it ended.
- ``live-stream:<CallSid>`` holds ``<issued_ms>:<token id>`` of the stream serving the call,
  with a short TTL that the serving session refreshes every third of it (a heartbeat) and
  deletes at its end. While it is held, another stream is refused; a stream whose token is
  *newer* than the holder's (the gateway's after-stream mints one when Twilio reports the old
  stream gone, e.g. its media replica was killed) first waits, up to one TTL, for the marker
  to lapse: a dead replica stops refreshing it, a live stream does not, so a second
  concurrent stream is refused whatever its token. If a session that lost its marker (a
  Redis outage longer than the TTL) finds another stream holding it, it ends without
  touching the call's log.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from enum import Enum

from redis.asyncio import Redis

from shared.contract import keys
from shared.contract.stream_token import StreamToken
from shared.runtime.outage import Outage, until_available

log = logging.getLogger(__name__)
CLAIM_RETRY_MAX_S = 0.2
"""Longest wait between two claims while Redis is away."""

_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {'used', 0} end
local live = redis.call('GET', KEYS[2])
if live then
  local issued = tonumber(string.match(live, '^(%d+):'))
  if issued == nil or issued >= tonumber(ARGV[3]) then return {'live', 0} end
  return {'wait', redis.call('PTTL', KEYS[2])}
end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4])
return {'ok', 0}
"""
_REFRESH = """
local live = redis.call('GET', KEYS[1])
if live and live ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Claim(Enum):
    """What claiming a stream for a call found."""

    OK = "ok"  # the token is used up and this stream is the call's live stream
    USED = "used"  # the token was used before
    LIVE = "live"  # another stream with a token at least as new serves the call
    WAIT = "wait"  # an older stream holds the marker: wait and see whether it lapses

    @property
    def refusal(self) -> str | None:
        """The close reason when the stream is refused, else None."""
        if self is Claim.USED:
            return "stream token already used"
        if self in (Claim.LIVE, Claim.WAIT):
            return "another stream is live for this call"
        return None


class StreamGuard:
    """Claims, keeps and releases one call's stream (one instance per session)."""

    def __init__(
        self, redis: Redis, groups: int, call_sid: str, token: StreamToken, live_ttl_s: float
    ) -> None:
        self.redis = redis
        self.token = token
        self.marker = f"{token.issued_ms}:{token.token_id}"
        self.used_key = keys.stream_token_used(call_sid, token.token_id, groups)
        self.live_key = keys.live_stream(call_sid, groups)
        self.live_ttl_ms = max(int(live_ttl_s * 1000), 1)

    async def claim(self, now: float | None = None) -> tuple[Claim, float]:
        """Try once to use the token and become the call's live stream; with WAIT, also the
        seconds until the holder's marker lapses unless it is refreshed."""
        left_s = self.token.expires - (now if now is not None else time.time())
        used_ttl_ms = max(math.ceil(left_s * 1000), 0) + 1000  # verify() accepts at `expires`
        outcome, lapse_ms = await self.redis.eval(
            _CLAIM,
            2,
            self.used_key,
            self.live_key,
            self.marker,
            str(used_ttl_ms),
            str(self.token.issued_ms),
            str(self.live_ttl_ms),
        )
        claim = Claim(outcome.decode() if isinstance(outcome, bytes) else str(outcome))
        return claim, max(int(lapse_ms), 0) / 1000

    async def claim_or_wait(self, outage_patience_s: float = 0.0) -> Claim:
        """Claim; a newer token waits (at most one marker TTL and a refresh interval) for an
        older stream's marker to lapse, then claims again. Never WAIT. A Redis outage is
        waited out for `outage_patience_s` (a stream that starts in a blip is served once
        Redis is back, not closed at once; Twilio buffers the caller's audio meanwhile)."""
        deadline = time.monotonic() + self.live_ttl_ms / 1000 * 4 / 3
        outage = Outage(f"stream claim of {self.live_key}", log)
        while True:
            claim, lapse_s = await until_available(
                self.claim, outage, max_delay_s=CLAIM_RETRY_MAX_S, patience_s=outage_patience_s
            )
            left = deadline - time.monotonic()
            if claim is not Claim.WAIT:
                return claim
            if left <= 0:
                return Claim.LIVE
            await asyncio.sleep(min(lapse_s + 0.01, left))

    async def refresh(self) -> bool:
        """Extend the marker; False when another stream has taken the call over."""
        kept = await self.redis.eval(_REFRESH, 1, self.live_key, self.marker, str(self.live_ttl_ms))
        return bool(kept)

    async def release(self) -> None:
        """Drop the marker if it is still this stream's."""
        await self.redis.eval(_RELEASE, 1, self.live_key, self.marker)
