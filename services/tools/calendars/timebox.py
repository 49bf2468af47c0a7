"""The time box around every external calendar call: bounded by the connection's timeout_ms,
and every way it can fail (timeout, network, HTTP status, unparseable reply, bad config)
turned into an `Outcome` with a reason for the logs. It never raises."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx

from services.tools.calendars.model import CalendarError
from shared.bus.waiting import within

log = logging.getLogger("tools.calendars")

T = TypeVar("T")

DEFAULT_TIMEOUT_MS = 1500
MAX_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """The value of a call that worked, or the reason it did not (`failure` is set)."""

    value: T | None = None
    failure: str | None = None


def timeout_seconds(timeout_ms: int | None) -> float:
    """A connection's timeout in seconds: missing/non-positive -> default, capped at 30 s."""
    if timeout_ms is None or timeout_ms <= 0:
        timeout_ms = DEFAULT_TIMEOUT_MS
    return min(timeout_ms, MAX_TIMEOUT_MS) / 1000


async def time_boxed(
    call: Callable[[], Awaitable[T]], timeout_ms: int | None, what: str
) -> Outcome[T]:
    """Run `call()` for at most timeout_ms; `what` names the call in log lines."""
    limit = timeout_seconds(timeout_ms)
    try:
        return Outcome(value=await within(call(), limit))
    except TimeoutError:
        failure = f"no answer within {int(limit * 1000)} ms"
    except httpx.HTTPError as exc:
        failure = f"{type(exc).__name__}: {exc}"
    except CalendarError as exc:
        failure = str(exc)
    except (ValueError, KeyError, TypeError) as exc:  # malformed JSON/XML/iCalendar replies
        failure = f"unreadable reply ({type(exc).__name__}: {exc})"
    except Exception as exc:
        # This is the boundary to third-party servers: a bug in parsing their data must cost
        # one calendar's answer (reported to the caller), not the caller's tool call.
        log.exception("calendar call failed unexpectedly", extra={"calendar_call": what})
        failure = f"unexpected {type(exc).__name__}"
    log.warning("calendar call failed", extra={"calendar_call": what, "reason": failure})
    return Outcome(failure=failure)
