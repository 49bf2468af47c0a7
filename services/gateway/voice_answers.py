"""`/twilio/voice` answers once per CallSid: the first request claims the CallSid in Redis,
starts the call and stores its TwiML; a retry or replay of the same CallSid gets that same
TwiML back and starts nothing (no second `call.started`, no fresh stream token)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

PENDING = ""
"""Value of a claimed CallSid whose answer is still being made."""
POLL_S = 0.05
CLAIM_TTL_S = 30
"""How long an unanswered claim lives: a replica that dies mid-answer blocks the CallSid no
longer than this (Twilio's retry after that makes the answer afresh)."""


def answer_key(call_sid: str) -> str:
    """Where the first answer to a CallSid is kept (gateway-private)."""
    return f"fd:voice-answer:{call_sid}"


class AnswerPendingError(RuntimeError):
    """Another request for this CallSid is still making its answer."""


async def answer_once(
    redis: Redis,
    call_sid: str,
    ttl_s: int,
    make: Callable[[], Awaitable[str]],
    *,
    wait_s: float = 5.0,
) -> str:
    """The TwiML for `call_sid`: made by `make` the first time, the stored copy afterwards.

    A concurrent duplicate waits (bounded by `wait_s`) for the first answer; if `make` fails
    the claim is dropped, so Twilio's retry can try again."""
    key = answer_key(call_sid)
    if await redis.set(key, PENDING, nx=True, ex=min(CLAIM_TTL_S, ttl_s)):
        try:
            body = await make()
        except BaseException:
            await redis.delete(key)
            raise
        await redis.set(key, body, ex=ttl_s)
        return body
    deadline = time.monotonic() + wait_s
    while True:
        raw: bytes | str | None = await redis.get(key)
        stored = raw.decode() if isinstance(raw, bytes) else raw
        if stored:
            return stored
        if stored is None:  # the first request failed and dropped its claim: answer now
            return await answer_once(redis, call_sid, ttl_s, make, wait_s=wait_s)
        if time.monotonic() > deadline:
            raise AnswerPendingError(call_sid)
        await asyncio.sleep(POLL_S)
