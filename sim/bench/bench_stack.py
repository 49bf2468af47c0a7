"""Start the platform for a bench run: embedded or configured infra, sims with a profile."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from frontdesk.replicas import start_replicated
from frontdesk.supervisor import Ports, Stack, service_env, start_services, wait_http
from shared.db.engine import make_engine, make_sessions
from shared.db.migrate import upgrade
from shared.runtime.embedded import Embedded, child_env, ensure
from shared.tenancy.tenant_apply import apply, load_spec
from sim.bench.profiles import LatencyProfile
from sim.bench.redis_nodes import server_pids

ROOT = Path(__file__).resolve().parents[2]
TENANT = ROOT / "deploy" / "tenants" / "daves-barbershop.yaml"
POLICY = ROOT / "sim" / "policies" / "bench.yaml"


@dataclass
class BenchStack:
    """A running platform plus what the bench needs to reach and measure it."""

    stack: Stack
    embedded: Embedded
    env: dict[str, str]
    to_number: str
    redis_cluster: bool = False  # REDIS_CLUSTER=true: embedded.redis_url names a cluster node

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.stack.ports.gateway}"

    @property
    def stt_url(self) -> str:
        return f"http://127.0.0.1:{self.stack.ports.stt}"

    @property
    def tts_url(self) -> str:
        return f"http://127.0.0.1:{self.stack.ports.tts}"

    @property
    def media_url(self) -> str:
        return f"http://127.0.0.1:{self.stack.ports.media}"

    def stop(self) -> None:
        self.stack.stop()
        self.embedded.stop()


async def _seed(database_url: str) -> str:
    engine = make_engine(database_url)
    try:
        spec = load_spec(TENANT)
        async with make_sessions(engine)() as session:
            await apply(session, spec)
        return spec.numbers[0].e164
    finally:
        await engine.dispose()


def start_bench_stack(
    redis_url: str | None,
    database_url: str | None,
    embedded_dir: Path,
    log_dir: Path,
    profile: LatencyProfile,
    replicas: Mapping[str, int] | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> BenchStack:
    """Infra (configured URLs, or embedded servers under `embedded_dir`), the sims with the
    profile's latencies and the bench policy, and the five services; with `replicas`, that
    many of each, gateway and media behind HAProxy (frontdesk/replicas.py)."""
    embedded = ensure(redis_url, database_url, str(embedded_dir))
    stack = Stack(ports=Ports.random(), log_dir=log_dir)
    try:
        upgrade(embedded.database_url)
        to_number = asyncio.run(_seed(embedded.database_url))
        env = child_env(embedded, service_env(stack.ports, with_sims=True))
        env |= {"LOG_LEVEL": "WARNING"}  # INFO lines per call would cost CPU we measure
        # voice-to-voice measures the reply: a filler (issue 17) on a loaded box's slow turn
        # would be taken for it (extra_env may turn fillers back on)
        env |= {"FILLER_ENABLED": "false"}
        env |= dict(extra_env or {})
        p = stack.ports
        argv = [sys.executable, "-m", "sim", "--stt-port", str(p.stt), "--tts-port", str(p.tts),
                "--llm-port", str(p.llm), "--policy", str(POLICY), *profile.sim_args()]
        stack.spawn("sims", argv, env)
        for port in (p.stt, p.tts, p.llm):
            wait_http(f"http://127.0.0.1:{port}/healthz", stack)
        if replicas is None:
            start_services(stack, env)
        else:
            start_replicated(stack, env, replicas, log_dir)
    except BaseException:
        stack.stop()
        embedded.stop()
        raise
    cluster = env.get("REDIS_CLUSTER", "").lower() == "true"
    return BenchStack(
        stack=stack, embedded=embedded, env=env, to_number=to_number, redis_cluster=cluster
    )


async def infra_pids(redis_url: str, database_url: str, cluster: bool = False) -> dict[str, int]:
    """PIDs of the Redis server(s) and the Postgres postmaster (when they run on this host)."""
    import asyncpg

    out = await server_pids(redis_url, cluster)
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
    finally:
        await conn.close()
    try:
        parent = psutil.Process(backend).parent()
    except psutil.Error:
        parent = None
    if parent is not None:
        out["postgres"] = parent.pid
    return {name: pid for name, pid in out.items() if psutil.pid_exists(pid)}
