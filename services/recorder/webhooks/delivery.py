"""Durable webhook deliveries: queued in Postgres, sent by a loop in every recorder replica.

A due delivery is leased (its `next_attempt_at` pushed past the attempt's timeout) in a short
`FOR UPDATE SKIP LOCKED` transaction, so replicas never send the same attempt twice at once and
a replica that dies mid-attempt only delays it. Failures retry with exponential backoff and
jitter until `WEBHOOK_MAX_ATTEMPTS`, then the delivery is dead-lettered (status `failed`) until
it is redelivered through the API. Every attempt is logged in `webhook_attempts`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.recorder.webhooks.signing import signed_headers
from shared.db.base import new_id
from shared.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from shared.observability.metrics import Metrics
from shared.runtime.guarded_http import RefusedAddressError
from shared.runtime.outage import Outage, is_transient, sleep_unless
from shared.runtime.settings import Settings
from shared.runtime.telemetry import tracer

log = logging.getLogger(__name__)
_tracer = tracer(__name__)

LEASE_MARGIN_S = 30.0
ERROR_CHARS = 500


def safe_status(code: int) -> str:
    """`HTTP 500 Internal Server Error`: the code and its standard phrase, nothing the
    receiver wrote (a failed delivery's record must not echo an internal response)."""
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again after a failed attempt."""

    base_s: float
    max_s: float
    max_attempts: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.webhook_backoff_base_s,
            settings.webhook_backoff_max_s,
            settings.webhook_max_attempts,
        )

    def delay_s(self, attempts: int, rng: random.Random) -> float:
        """Delay after the `attempts`-th failure: base x 2^(n-1), capped, times 0.5..1 jitter."""
        ceiling = min(self.max_s, self.base_s * 2.0 ** max(attempts - 1, 0))
        return float(ceiling * (0.5 + rng.random() / 2))


async def enqueue(
    session: AsyncSession,
    tenant_id: str,
    event_id: str,
    event_type: str,
    call_sid: str | None,
    payload: dict[str, Any],
) -> int:
    """A delivery per active endpoint of the tenant (idempotent per endpoint and event id);
    returns how many endpoints there are. The caller commits."""
    endpoints = (
        await session.scalars(
            select(WebhookEndpoint.id).where(
                WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.active.is_(True)
            )
        )
    ).all()
    for endpoint_id in endpoints:
        await session.execute(
            insert(WebhookDelivery)
            .values(
                id=new_id(),
                event_id=event_id,
                event_type=event_type,
                endpoint_id=endpoint_id,
                tenant_id=tenant_id,
                call_sid=call_sid,
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at=func.now(),
            )
            .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
        )
    return len(endpoints)


@dataclass(frozen=True)
class _Leased:
    id: str
    event_id: str
    payload: dict[str, Any]
    attempts: int
    url: str
    secret: str
    active: bool


@dataclass
class Deliverer:
    """Sends due deliveries until stopped; `wake()` makes it look at once."""

    sessions: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    policy: RetryPolicy
    timeout_s: float
    poll_s: float
    batch: int = 20
    rng: random.Random = field(default_factory=random.Random)
    metrics: Metrics = field(default_factory=Metrics)  # this replica's Prometheus metrics
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        """New deliveries are queued: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set."""
        outage = Outage("postgres (webhook deliveries)", log)
        while not stop.is_set():
            try:
                sent = await self.deliver_due()
            except Exception as exc:  # a Postgres blip must not end deliveries
                if not is_transient(exc):
                    raise
                await sleep_unless(stop, outage.failed(exc))
                continue
            outage.recovered()
            if sent:
                continue
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=self.poll_s, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def deliver_due(self) -> int:
        """Lease and send the deliveries that are due now; how many were attempted."""
        leased = await self._lease()
        await asyncio.gather(*(self._attempt(item) for item in leased))
        return len(leased)

    async def _lease(self) -> list[_Leased]:
        lease_until = func.now() + timedelta(seconds=self.timeout_s + LEASE_MARGIN_S)
        async with self.sessions() as session:
            due = (
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= func.now(),
                )
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(self.batch)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            rows = (
                await session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_(due))
                    .values(next_attempt_at=lease_until)
                    .returning(
                        WebhookDelivery.id,
                        WebhookDelivery.event_id,
                        WebhookDelivery.payload,
                        WebhookDelivery.attempts,
                        WebhookDelivery.endpoint_id,
                    )
                )
            ).all()
            endpoints = {
                e.id: e
                for e in (
                    await session.scalars(
                        select(WebhookEndpoint).where(
                            WebhookEndpoint.id.in_([r.endpoint_id for r in rows])
                        )
                    )
                ).all()
            }
            await session.commit()
        return [
            _Leased(
                r.id,
                r.event_id,
                r.payload,
                r.attempts,
                endpoints[r.endpoint_id].url,
                endpoints[r.endpoint_id].secret,
                endpoints[r.endpoint_id].active,
            )
            for r in rows
            if r.endpoint_id in endpoints
        ]

    async def _attempt(self, item: _Leased) -> None:
        with _tracer.start_as_current_span(
            "webhook.delivery",
            attributes={"webhook.event_id": item.event_id, "webhook.attempt": item.attempts + 1},
        ) as span:
            outcome = await self._attempt_once(item)
            span.set_attribute("webhook.outcome", outcome)

    async def _attempt_once(self, item: _Leased) -> str:
        code: int | None = None
        error: str | None = None
        permanent = False
        began = time.perf_counter()
        if not item.active:
            error = "endpoint is disabled"
        else:
            body = json.dumps(item.payload, separators=(",", ":")).encode()
            headers = signed_headers(item.secret, item.event_id, int(time.time()), body)
            try:
                response = await self.http.post(
                    item.url, content=body, headers=headers, timeout=self.timeout_s
                )
                code = response.status_code
                if not 200 <= code < 300:
                    error = safe_status(code)  # never the receiver's body: it may be internal
            except RefusedAddressError as exc:
                error, permanent = f"refused: {exc.reason}"[:ERROR_CHARS], True
            except httpx.HTTPError as exc:
                error = type(exc).__name__  # the class only: messages can echo internal detail
        duration_ms = round((time.perf_counter() - began) * 1000, 1)
        outcome = await self._record(item, code, error, duration_ms, permanent=permanent)
        self.metrics.webhook_done(outcome, duration_ms / 1000)
        return outcome

    async def _record(
        self,
        item: _Leased,
        code: int | None,
        error: str | None,
        duration_ms: float,
        *,
        permanent: bool = False,
    ) -> str:
        """Store the attempt; its outcome: delivered, retry or dead."""
        attempts = item.attempts + 1
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "attempts": attempts,
            "response_code": code,
            "last_error": error,
        }
        if error is None:
            values |= {"status": "delivered", "delivered_at": now}
            outcome = "delivered"
        elif attempts >= self.policy.max_attempts or not item.active or permanent:
            values |= {"status": "failed"}
            outcome = "dead"
        else:
            delay = self.policy.delay_s(attempts, self.rng)
            values |= {"next_attempt_at": now + timedelta(seconds=delay)}
            outcome = "retry"
        async with self.sessions() as session:
            number = await session.scalar(
                select(func.count())
                .select_from(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == item.id)
            )
            session.add(
                WebhookAttempt(
                    delivery_id=item.id,
                    attempt=int(number or 0) + 1,
                    at=now,
                    response_code=code,
                    error=error,
                    duration_ms=duration_ms,
                )
            )
            await session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id == item.id).values(**values)
            )
            await session.commit()
        if error is not None:
            log.info("webhook %s attempt %d failed: %s", item.id, attempts, error)
        return outcome
