"""`until_available`: transient errors are waited out, within the caller's bounds."""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.runtime.outage import Outage, until_available


async def test_transient_errors_are_retried_until_the_attempt_succeeds() -> None:
    failures = [RedisConnectionError("down"), RedisConnectionError("down")]

    async def attempt() -> str:
        if failures:
            raise failures.pop()
        return "1-0"

    outage = Outage("redis", logging.getLogger(__name__))
    assert await until_available(attempt, outage, max_delay_s=0.001) == "1-0"
    assert not failures and not outage.down  # both failures were retried; the outage is over


async def test_past_its_patience_the_transient_error_propagates() -> None:
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        raise RedisConnectionError("still down")

    outage = Outage("redis", logging.getLogger(__name__))
    with pytest.raises(RedisConnectionError):
        await until_available(attempt, outage, max_delay_s=0.001, patience_s=0.05)
    assert calls > 1  # retried (each wait capped at 1 ms), then given up


async def test_an_error_that_is_not_transient_is_not_retried() -> None:
    async def attempt() -> str:
        raise ValueError("bad entry")

    with pytest.raises(ValueError):
        await until_available(attempt, Outage("redis", logging.getLogger(__name__)))
