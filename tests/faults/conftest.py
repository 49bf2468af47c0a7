"""The fault-suite platform: two replicas of every service on a private Redis (AOF) and a
private Postgres, gateway and media behind round-robin TCP proxies, and helpers to find and kill
the replica that holds a piece of work."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis

from frontdesk.supervisor import Ports, Stack, service_env, start_sims, wait_http
from shared.db.engine import make_engine, make_sessions
from shared.db.migrate import upgrade
from shared.runtime.embedded import Embedded, child_env
from shared.tenancy.tenant_apply import apply, load_spec
from sim.twilio_caller import TwilioCallerOptions
from sim.twilio_webhook import new_sid
from tests.conftest import server_dir
from tests.faults.proxy import RoundRobinProxy
from tests.faults.redis_server import OwnRedis
from tests.faults.servers import PostgresServer, RedisServer

ROOT = Path(__file__).resolve().parents[2]
LONDON = ZoneInfo("Europe/London")
WORKERS = ("brain", "tools", "recorder")
REPLICAS = ("a", "b")
TOOL_TIMEOUT_S = 4.0
LLM_FIRST_TOKEN_MS = 250  # a turn lasts long enough to be killed in the middle of it
HEAVY = ("test_fault_scenarios.py", "test_fault_scale.py")
"""The modules that run on the two-replica platform (`make faults`)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The two-replica scenarios (minutes: ten services start) are `make faults`; the Redis
    blip tests against a private server stay in `make test`."""
    for item in items:
        if any(f"tests/faults/{name}" in str(item.fspath) for name in HEAVY):
            item.add_marker(pytest.mark.faults)


@dataclass
class FaultStack:
    """Everything a fault scenario touches."""

    stack: Stack
    env: dict[str, str]
    redis: RedisServer
    pg: PostgresServer
    database_url: str
    gateway: RoundRobinProxy
    media: RoundRobinProxy
    tenant_number: str
    argv: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)

    @property
    def llm(self) -> str:
        return f"http://127.0.0.1:{self.stack.ports.llm}"

    def caller(self) -> TwilioCallerOptions:
        return TwilioCallerOptions(
            gateway_url=f"http://127.0.0.1:{self.gateway.port}",
            auth_token=self.env["TWILIO_AUTH_TOKEN"],
            to_number=self.tenant_number,
            from_number="+447700900123",
            call_sid=new_sid("CA"),
            stt_control_url=f"http://127.0.0.1:{self.stack.ports.stt}",
            max_call_s=60,
        )

    def spawn(self, label: str) -> None:
        argv, env = self.argv[label]
        self.stack.spawn(label, argv, env)

    async def kill(self, label: str, sig: int = signal.SIGKILL) -> None:
        """Signal one replica and wait for it to exit, off the event loop: a SIGTERM'd media
        drains for seconds, and the simulated callers of this process must keep talking."""
        await asyncio.to_thread(self.stack.kill, label, sig)

    def revive(self) -> None:
        """Start again every replica a scenario killed (and the servers it stopped)."""
        if self.redis.proc is None:
            self.redis.start()
        for label in self.argv:
            if label not in self.stack.procs:
                self.spawn(label)
        for port in (*self.gateway.backends, *self.media.backends):
            wait_http(f"http://127.0.0.1:{port}/healthz", self.stack, timeout_s=180)

    def set_policy(self, policy: dict[str, Any]) -> None:
        httpx.post(f"{self.llm}/sim/policy", json=policy, timeout=10).raise_for_status()

    def redis_client(self) -> redis.Redis:
        return redis.Redis(port=self.redis.port, decode_responses=True)


async def holder_of(fault: FaultStack, stream: str, group: str, call_sid: str) -> str:
    """The replica (consumer) holding `call_sid`'s pending entry of a work stream (bounded)."""
    client = fault.redis_client()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for pending in client.xpending_range(stream, group, "-", "+", 100):
                entries = client.xrange(stream, pending["message_id"], pending["message_id"])
                if entries and entries[0][1].get("call_sid") == call_sid:
                    return str(pending["consumer"])
            await asyncio.sleep(0.01)
    finally:
        client.close()
    raise AssertionError(f"no {group} replica took work of {call_sid}")


def booking_policy(start: datetime, after: str) -> dict[str, Any]:
    """The scripted LLM: "book" books a haircut with Dave at `start`; "bye" ends the call."""
    return {
        "rules": [
            {
                "match": r"\bbook\b",
                "tool_call": {
                    "name": "book_appointment",
                    "arguments": {
                        "customer_name": "Alice Smith",
                        "phone": "+447700900123",
                        "service": "Men's Haircut",
                        "start": start.strftime("%Y-%m-%dT%H:%M"),
                        "staff": "Dave",
                    },
                },
            },
            {"match": r"\b(bye|thanks)\b", "reply": "You're welcome. Goodbye!"},
            {"match": r"price|cost|how much", "reply": "A men's haircut is twenty five pounds."},
        ],
        "after_tool": "Done.",
        "after_tools": {"book_appointment": after},
        "fallback": "Sorry, could you say that again?",
    }


@pytest.fixture(scope="package")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    redis_server = RedisServer()
    pg = PostgresServer()
    stack = Stack(ports=Ports.random(), log_dir=tmp_path_factory.mktemp("fault-logs"))
    gateway_ports = [Ports.random().gateway for _ in REPLICAS]
    media_ports = [Ports.random().media for _ in REPLICAS]
    try:
        redis_server.start()
        pg.start()
        database_url = pg.url
        upgrade(database_url)
        spec = load_spec(ROOT / "deploy" / "tenants" / "daves-barbershop.yaml")

        async def seed() -> None:
            engine = make_engine(database_url)
            async with make_sessions(engine)() as session:
                await apply(session, spec)
            await engine.dispose()

        asyncio.run(seed())
        with RoundRobinProxy(gateway_ports) as gw, RoundRobinProxy(media_ports) as md:
            env = child_env(
                Embedded(redis_url=redis_server.url, database_url=database_url),
                service_env(stack.ports, with_sims=True)
                | {
                    "PUBLIC_GATEWAY_URL": f"http://127.0.0.1:{gw.port}",
                    "PUBLIC_MEDIA_WS_URL": f"ws://127.0.0.1:{md.port}/twilio/stream",
                    "TWILIO_AUTH_TOKEN": "fault-auth-token",
                    "STREAM_TOKEN_SECRET": "fault-stream-secret",
                    "CLAIM_IDLE_MS": "3000",
                    "TOOL_TIMEOUT_S": str(TOOL_TIMEOUT_S),
                    "LOG_JSON": "true",
                    "SILENCE_REPROMPT_S": "8",
                    "SILENCE_HANGUP_S": "8",
                    # a SIGTERM'd media gives its live calls 2 s, then moves the rest through
                    # after-stream (the default 20 s would let a scenario's short calls finish)
                    "MEDIA_DRAIN_S": "2",
                    "METRICS_PORT": "0",  # two replicas of each worker: no shared ops port
                },
            )
            start_sims(
                stack,
                env,
                policy=str(ROOT / "sim" / "policies" / "daves_barbershop.yaml"),
                extra=["--llm-first-token-ms", str(LLM_FIRST_TOKEN_MS)],
            )
            fault = FaultStack(
                stack=stack,
                env=env,
                redis=redis_server,
                pg=pg,
                database_url=database_url,
                gateway=gw,
                media=md,
                tenant_number=spec.numbers[0].e164,
            )
            for name in WORKERS:
                for r in REPLICAS:
                    label = f"{name}-{r}"
                    argv = [sys.executable, "-m", f"services.{name}"]
                    fault.argv[label] = (argv, env | {"REPLICA_NAME": label})
            for name, ports, var in (
                ("gateway", gateway_ports, "GATEWAY_PORT"),
                ("media", media_ports, "MEDIA_PORT"),
            ):
                for r, port in zip(REPLICAS, ports, strict=True):
                    label = f"{name}-{r}"
                    argv = [sys.executable, "-m", f"services.{name}"]
                    fault.argv[label] = (argv, env | {"REPLICA_NAME": label, var: str(port)})
            fault.revive()
            yield fault
    finally:
        stack.stop()
        redis_server.close()
        pg.close()


@pytest.fixture
def fault(fault_stack: FaultStack) -> Iterator[FaultStack]:
    """The fault platform, healed after each scenario."""
    fault_stack.revive()
    yield fault_stack
    fault_stack.revive()


def dumps(obj: object) -> str:
    return json.dumps(obj, default=str)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis(server_dir("frontdesk-redis-"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
