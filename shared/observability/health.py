"""Liveness and readiness: `/healthz` (the process serves), `/readyz` (Redis and Postgres
answer, the replica is not draining, and, where it has a capacity, it is not full)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.bus.waiting import within
from shared.observability.metrics import Metrics

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 2.0
"""Longest one dependency check may take before it counts as down."""


@dataclass
class Readiness:
    """What `/readyz` checks; `draining` is set when the replica starts to stop.

    `load` and `capacity` (media: live calls and `MEDIA_MAX_CALLS`) make a replica "full" at
    `capacity`: not ready, so the balancer sends it no new call, while the calls it has go on.
    """

    redis: Redis | None
    engine: AsyncEngine | None
    metrics: Metrics = field(default_factory=Metrics)
    draining: bool = False
    timeout_s: float = CHECK_TIMEOUT_S
    load: Callable[[], int] | None = None
    capacity: int = 0  # 0: no limit

    def drain(self) -> None:
        """From now on, not ready (the load balancer stops sending new work)."""
        self.draining = True
        self.metrics.draining.set(1)
        self.metrics.ready.set(0)

    async def check(self) -> tuple[bool, dict[str, str]]:
        """Whether the replica is ready, and one line per check."""
        results = await asyncio.gather(self._redis(), self._postgres())
        checks = {"redis": results[0], "postgres": results[1]}
        checks["draining"] = "yes" if self.draining else "no"
        full = self.full()
        if self.load is not None:
            limit = str(self.capacity) if self.capacity > 0 else "no limit"
            checks["calls"] = f"{self.load()} of {limit}" + (" (full)" if full else "")
        ready = not self.draining and not full and all(v in ("ok", "not used") for v in results)
        self.metrics.ready.set(1 if ready else 0)
        return ready, checks

    def full(self) -> bool:
        """Whether the replica carries as much as it may take (a new call would overload it)."""
        return self.load is not None and 0 < self.capacity <= self.load()

    async def _redis(self) -> str:
        if self.redis is None:
            return "not used"
        try:
            await within(self.redis.ping(), self.timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("readiness: Redis check failed: %s", exc)
            return f"down: {type(exc).__name__}"
        return "ok"

    async def _postgres(self) -> str:
        if self.engine is None:
            return "not used"
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("readiness: Postgres check failed: %s", exc)
            return f"down: {type(exc).__name__}"
        return "ok"


def readiness_status(ready: bool, checks: dict[str, str]) -> str:
    """The word `/readyz` answers with: "ready"; "full" when room is all that is missing (the
    balancer takes the replica out until a call ends); otherwise "not ready"."""
    if ready:
        return "ready"
    deps_ok = all(checks.get(k) in ("ok", "not used") for k in ("redis", "postgres"))
    full = checks.get("calls", "").endswith("(full)")
    return "full" if full and deps_ok and checks.get("draining") == "no" else "not ready"
