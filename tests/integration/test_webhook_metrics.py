"""Webhook deliveries counted by outcome (delivered, retry, dead) against a real receiver and
Postgres (helpers and the private-database fixture of test_webhooks)."""

from __future__ import annotations

import random

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.recorder.webhooks.delivery import Deliverer, RetryPolicy
from shared.observability.metrics import Metrics
from tests.integration.test_webhooks import (  # noqa: F401 (sessions is a fixture)
    FAST,
    _deliver_until,
    _queue_event,
    receiver,
    sessions,
)


def outcomes(metrics: Metrics) -> dict[str, float]:
    return {
        s.labels["outcome"]: s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == "frontdesk_webhook_deliveries_total"
    }


async def test_deliveries_are_counted_by_outcome(
    sessions: async_sessionmaker[AsyncSession],  # noqa: F811
) -> None:
    metrics = Metrics("recorder")
    async with receiver(failures=2) as hook, httpx.AsyncClient() as http:
        event_id = await _queue_event(sessions, hook.url)
        deliverer = Deliverer(
            sessions, http, FAST, timeout_s=5, poll_s=0.05, rng=random.Random(7), metrics=metrics
        )
        await _deliver_until(deliverer, sessions, event_id, "delivered")
    assert outcomes(metrics) == {"retry": 2.0, "delivered": 1.0}

    metrics = Metrics("recorder")
    two_tries = RetryPolicy(base_s=0.05, max_s=0.2, max_attempts=2)
    async with receiver(failures=10) as hook, httpx.AsyncClient() as http:
        event_id = await _queue_event(sessions, hook.url)
        deliverer = Deliverer(sessions, http, two_tries, timeout_s=5, poll_s=0.05, metrics=metrics)
        await _deliver_until(deliverer, sessions, event_id, "failed")
    assert outcomes(metrics) == {"retry": 1.0, "dead": 1.0}
    durations = [
        s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == "frontdesk_webhook_delivery_duration_seconds_count"
    ]
    assert durations == [2.0]
