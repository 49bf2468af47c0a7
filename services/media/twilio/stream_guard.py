"""Who may serve a call's Media Stream: a token works once, one live stream per CallSid.

Two Redis keys in the call's hash slot (shared/contract/keys.py), claimed by one Lua script
so the checks and the writes are atomic:

- ``stream-token:<CallSid>:<token id>`` is SET NX on the first `start` that presents the
  token and lives as long as the token could still verify: a second use is refused, while
  the call is live and after it ended.
- ``live-stream:<CallSid>`` holds ``<issued_ms>:<token id>`` of the stream serving the call,
  with a short TTL the serving session refreshes (a heartbeat) and deletes at its end. A new
  stream is refused while it is there, unless its token was minted *after* the live
  stream's token: that is the gateway's after-stream reconnect, which Twilio only asks for
  once the old stream's socket is gone (its media replica died and left the marker behind).
  The newer stream takes the marker over; if the old session is in fact still alive, its
  next heartbeat sees the marker is no longer its own and it ends without touching the log.
"""

from __future__ import annotations

import math
import time
from enum import Enum

from redis.asyncio import Redis

from shared.contract import keys
from shared.contract.stream_token import StreamToken

_CLAIM = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then return 'used' end
local live = redis.call('GET', KEYS[2])
if live then
  local issued = tonumber(string.match(live, '^(%d+):'))
  if issued ~= nil and issued >= tonumber(ARGV[3]) then return 'live' end
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4])
if live then return 'took-over' end
return 'ok'
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

    OK = "ok"
    TOOK_OVER = "took-over"  # a newer token replaced the marker of a (dead) older stream
    USED = "used"  # the token was presented before
    LIVE = "live"  # another stream with a token at least as new is serving the call

    @property
    def refusal(self) -> str | None:
        """The close reason when the claim refuses the stream, else None."""
        if self is Claim.USED:
            return "stream token already used"
        if self is Claim.LIVE:
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

    async def claim(self, now: float | None = None) -> Claim:
        """Use the token (once) and become the call's live stream, atomically."""
        left_s = self.token.expires - (now if now is not None else time.time())
        used_ttl_ms = max(math.ceil(left_s * 1000), 0) + 1000  # verify() accepts at `expires`
        result = await self.redis.eval(
            _CLAIM,
            2,
            self.used_key,
            self.live_key,
            self.marker,
            str(used_ttl_ms),
            str(self.token.issued_ms),
            str(self.live_ttl_ms),
        )
        return Claim(result.decode() if isinstance(result, bytes) else str(result))

    async def refresh(self) -> bool:
        """Extend the marker; False when another stream has taken the call over."""
        kept = await self.redis.eval(_REFRESH, 1, self.live_key, self.marker, str(self.live_ttl_ms))
        return bool(kept)

    async def release(self) -> None:
        """Drop the marker if it is still this stream's."""
        await self.redis.eval(_RELEASE, 1, self.live_key, self.marker)
