"""Riding out Redis and Postgres blips: which errors are transient, backoff, one log per outage.

A worker loop that meets a connection error waits (exponential backoff with jitter, from
tenacity) and tries again, forever, instead of exiting; it logs once when the outage begins and
once when it is over, never once per retry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from tenacity import wait_exponential_jitter

from shared.bus.waiting import wait_event

T = TypeVar("T")

BACKOFF_INITIAL_S = 0.05
BACKOFF_MAX_S = 2.0

_TRANSIENT: tuple[type[BaseException], ...] = (
    RedisConnectionError,  # includes BusyLoadingError (Redis replaying its AOF)
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
    InterfaceError,
    OperationalError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.InterfaceError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` means "the server is away for now" (retry), not "this can never work"."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, DBAPIError) and not isinstance(exc, (InterfaceError, OperationalError)):
        return isinstance(exc.orig, _TRANSIENT) or _is_transient_cause(exc.orig)
    return isinstance(exc, _TRANSIENT) or _is_transient_cause(exc)


def _is_transient_cause(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 5:
        cause = exc.__cause__
        if isinstance(cause, _TRANSIENT):
            return True
        exc, seen = cause, seen + 1
    return False


def backoff() -> Callable[[int], float]:
    """Delay before retry number `n` (1-based): 50 ms doubling to 2 s, with jitter."""
    wait = wait_exponential_jitter(multiplier=BACKOFF_INITIAL_S, max=BACKOFF_MAX_S, jitter=0.05)

    class _State:  # the small piece of tenacity's RetryCallState that wait strategies read
        def __init__(self, attempt: int) -> None:
            self.attempt_number = attempt

    return lambda n: float(wait(_State(n)))  # type: ignore[arg-type]


class Outage:
    """Logs an outage of one dependency once when it starts and once when it ends."""

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self.what = what
        self.log = logger
        self.since: float | None = None
        self.failures = 0
        self._delay = backoff()

    @property
    def down(self) -> bool:
        """Whether the last attempt failed."""
        return self.since is not None

    def failed(self, exc: BaseException) -> float:
        """Note a failed attempt; returns how long to wait before the next one."""
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            self.log.warning(
                "%s unavailable (%s: %s); retrying with backoff",
                self.what,
                type(exc).__name__,
                exc,
            )
        return self._delay(self.failures)

    def recovered(self) -> None:
        """Note a successful attempt (logs the end of an outage, if there was one)."""
        if self.since is not None:
            self.log.warning(
                "%s back after %.2f s (%d failed attempts)",
                self.what,
                time.monotonic() - self.since,
                self.failures,
                extra={"outage_s": round(time.monotonic() - self.since, 3)},
            )
        self.since = None
        self.failures = 0


async def sleep_unless(stop: asyncio.Event | None, seconds: float) -> bool:
    """Sleep `seconds`, or less if `stop` is set; True if `stop` is set."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    return await wait_event(stop, seconds)


class Stopped(Exception):
    """`until_available` gave up because the stop event was set."""


async def until_available(
    attempt: Callable[[], Awaitable[T]],
    outage: Outage,
    stop: asyncio.Event | None = None,
    *,
    max_delay_s: float | None = None,
    patience_s: float | None = None,
) -> T:
    """Run `attempt` until it succeeds, waiting out transient errors (others propagate).

    Raises `Stopped` if `stop` is set while waiting. `max_delay_s` caps each wait (retry soon
    after the server is back); after `patience_s` the transient error itself propagates.
    """
    deadline = None if patience_s is None else time.monotonic() + patience_s
    while True:
        try:
            result = await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not is_transient(exc) or (deadline is not None and time.monotonic() > deadline):
                raise
            delay = outage.failed(exc)
            if max_delay_s is not None:
                delay = min(delay, max_delay_s)
            if await sleep_unless(stop, delay):
                raise Stopped(outage.what) from exc
            continue
        outage.recovered()
        return result
