"""Stream guard against real Redis: a token works once, one live stream per CallSid, and a
newer token takes a call over only once the old stream's marker has lapsed."""

from __future__ import annotations

import asyncio
import contextlib
import time

from redis.asyncio import Redis

from services.media.twilio.stream_guard import Claim, StreamGuard
from shared.contract import keys
from shared.contract import stream_token as st
from sim.twilio_webhook import new_sid

SECRET = "guard-secret"
GROUPS = 16
TTL_S = 0.3


def guard_for(redis: Redis, call_sid: str, *, minted_at: float | None = None) -> StreamGuard:
    token = st.verify(SECRET, call_sid, st.issue(SECRET, call_sid, 120, now=minted_at))
    return StreamGuard(redis, GROUPS, call_sid, token, TTL_S)


async def test_a_token_works_once(redis: Redis) -> None:
    call_sid = new_sid("CA")
    first = guard_for(redis, call_sid)
    assert (await first.claim())[0] is Claim.OK
    again = StreamGuard(redis, GROUPS, call_sid, first.token, TTL_S)
    assert (await again.claim())[0] is Claim.USED  # while the call is live
    await first.release()
    assert not await redis.exists(first.live_key)
    assert (await again.claim())[0] is Claim.USED  # and after it ended
    ttl_ms = await redis.pttl(first.used_key)
    assert 115_000 < ttl_ms <= 122_000  # as long as the token could still verify


async def test_keys_share_the_call_stream_slot(redis: Redis) -> None:
    call_sid = new_sid("CA")
    guard = guard_for(redis, call_sid)
    tag = keys.call_stream(call_sid, GROUPS).split(":")[1]
    assert guard.used_key.split(":")[1] == tag and guard.live_key.split(":")[1] == tag


async def test_an_older_token_is_refused_at_once(redis: Redis) -> None:
    call_sid = new_sid("CA")
    live = guard_for(redis, call_sid)
    older = guard_for(redis, call_sid, minted_at=time.time() - 5)
    assert (await live.claim())[0] is Claim.OK
    assert (await older.claim())[0] is Claim.LIVE
    assert await older.claim_or_wait() is Claim.LIVE
    assert not await redis.exists(older.used_key)  # not used: it never served


async def test_a_newer_token_is_refused_while_the_stream_lives(redis: Redis) -> None:
    call_sid = new_sid("CA")
    live = guard_for(redis, call_sid)
    assert (await live.claim())[0] is Claim.OK
    newer = guard_for(redis, call_sid, minted_at=time.time() + 1)
    claim, lapse_s = await newer.claim()
    assert claim is Claim.WAIT and 0 < lapse_s <= TTL_S

    async def heartbeat() -> None:
        while await live.refresh():
            await asyncio.sleep(TTL_S / 3)

    beating = asyncio.create_task(heartbeat())
    try:
        assert await newer.claim_or_wait() is Claim.LIVE
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
    assert await redis.get(live.live_key) == live.marker


async def test_a_newer_token_takes_over_a_dead_stream(redis: Redis) -> None:
    call_sid = new_sid("CA")
    dead = guard_for(redis, call_sid)
    assert (await dead.claim())[0] is Claim.OK  # ... and its replica never refreshes again
    resumed = guard_for(redis, call_sid, minted_at=time.time() + 1)
    assert await resumed.claim_or_wait() is Claim.OK
    assert await redis.get(resumed.live_key) == resumed.marker
    assert not await dead.refresh()  # had it survived, it would learn it was replaced
    await dead.release()  # and its release leaves the new stream's marker alone
    assert await redis.get(resumed.live_key) == resumed.marker


async def test_refresh_restores_a_lapsed_marker(redis: Redis) -> None:
    call_sid = new_sid("CA")
    guard = guard_for(redis, call_sid)
    assert (await guard.claim())[0] is Claim.OK
    await redis.delete(guard.live_key)  # lapsed (e.g. Redis was unreachable for a while)
    assert await guard.refresh()
    assert 0 < await redis.pttl(guard.live_key) <= TTL_S * 1000
