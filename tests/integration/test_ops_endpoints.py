"""The workers' ops port against real Redis and Postgres: /healthz, /readyz (ready; not ready
when a dependency is down or while draining), /metrics with the standard process metrics, and
the consumer-group gauges read from a real stream."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from frontdesk.supervisor import free_port
from shared.db.engine import make_engine
from shared.observability.health import Readiness
from shared.observability.metrics import Metrics
from shared.observability.ops_server import ops_app, poll_group, serving
from tests.conftest import Infra


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


async def test_ops_port_health_readiness_and_metrics(infra: Infra, redis: Redis) -> None:
    metrics = Metrics("tools", process=True)
    engine = make_engine(infra.database_url, pool_size=1)
    readiness = Readiness(redis, engine, metrics)
    port = free_port()
    try:
        async with serving(ops_app(metrics, readiness, "tools-1"), "127.0.0.1", port):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                live = await http.get("/healthz")
                assert live.json() == {"status": "ok", "service": "tools", "replica": "tools-1"}
                ready = await http.get("/readyz")
                assert ready.status_code == 200, ready.text
                assert ready.json()["checks"] == {
                    "redis": "ok",
                    "postgres": "ok",
                    "draining": "no",
                }
                scraped = (await http.get("/metrics")).text
                assert (sample(scraped, "process_resident_memory_bytes") or 0) > 0
                assert sample(scraped, "frontdesk_ready") == 1
                # the ops routes count themselves, by route template
                assert (
                    sample(
                        scraped,
                        "frontdesk_http_requests_total",
                        route="/readyz",
                        method="GET",
                        status="200",
                    )
                    == 1
                )
                assert (await http.get("/nope")).status_code == 404

                readiness.drain()
                draining = await http.get("/readyz")
                assert draining.status_code == 503
                assert draining.json()["checks"]["draining"] == "yes"
                assert (await http.get("/healthz")).status_code == 200  # still alive
                scraped = (await http.get("/metrics")).text
                assert sample(scraped, "frontdesk_draining") == 1
                assert sample(scraped, "frontdesk_ready") == 0
                assert (
                    sample(
                        scraped,
                        "frontdesk_http_requests_total",
                        route="unmatched",
                        method="GET",
                        status="404",
                    )
                    == 1
                )
    finally:
        await engine.dispose()
    with pytest.raises(httpx.ConnectError):  # the port is closed with the block
        async with httpx.AsyncClient() as http:
            await http.get(f"http://127.0.0.1:{port}/healthz")


async def test_readiness_reports_a_dependency_that_is_down(infra: Infra) -> None:
    dead_port = free_port()  # nothing listens here
    redis = Redis.from_url(f"redis://127.0.0.1:{dead_port}/0", socket_connect_timeout=1)
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{dead_port}/test", pool_size=1)
    try:
        ready, checks = await Readiness(redis, engine, timeout_s=3).check()
    finally:
        await redis.aclose()
        await engine.dispose()
    assert not ready
    assert checks["redis"].startswith("down: ")
    assert checks["postgres"].startswith("down: ")
    # a replica that does not use Postgres is ready without it
    live = Redis.from_url(infra.redis_url)
    try:
        ready, checks = await Readiness(live, None).check()
    finally:
        await live.aclose()
    assert ready and checks["postgres"] == "not used"


async def test_group_gauges_follow_the_stream(redis: Redis) -> None:
    stream, group = "fd:test:ops-gauges", "g"
    await redis.delete(stream)
    await redis.xgroup_create(stream, group, id="0", mkstream=True)
    for i in range(5):
        await redis.xadd(stream, {"n": str(i)})
    await redis.xreadgroup(group, "c1", {stream: ">"}, count=2)  # 2 delivered, 3 not yet
    metrics = Metrics("brain")
    stop = asyncio.Event()
    poller = asyncio.create_task(poll_group(redis, stream, group, metrics, stop, 0.05))
    try:
        text = ""
        for _ in range(100):  # bounded wait for the first poll
            text = metrics.exposition().decode()
            if sample(text, "frontdesk_stream_lag_entries", stream=stream, group=group) == 3:
                break
            await asyncio.sleep(0.02)
        assert sample(text, "frontdesk_stream_lag_entries", stream=stream, group=group) == 3
        assert sample(text, "frontdesk_stream_pending_entries", stream=stream, group=group) == 2
    finally:
        stop.set()
        await poller
        await redis.delete(stream)
