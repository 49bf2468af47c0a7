"""Liveness and readiness: `/healthz` (the process serves), `/readyz` (Redis and Postgres
answer, and the replica is not draining)."""

from __future__ import annotations

import asyncio
import logging
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
    """What `/readyz` checks; `draining` is set when the replica starts to stop."""

    redis: Redis | None
    engine: AsyncEngine | None
    metrics: Metrics = field(default_factory=Metrics)
    draining: bool = False
    timeout_s: float = CHECK_TIMEOUT_S

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
        ready = not self.draining and all(v in ("ok", "not used") for v in results)
        self.metrics.ready.set(1 if ready else 0)
        return ready, checks

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
