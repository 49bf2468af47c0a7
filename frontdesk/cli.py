"""`frontdesk`: operate the platform (migrate, apply tenants, run everything, the demo)."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import datetime
from pathlib import Path

import typer

from frontdesk.call_command import call
from frontdesk.deadletter_commands import deadletters
from frontdesk.local_cluster import start_cluster
from frontdesk.replicas import parse_replicas, start_replicated
from frontdesk.status import status
from frontdesk.supervisor import (
    Ports,
    Stack,
    service_env,
    speech_env,
    start_services,
    start_sims,
    start_speech,
)
from frontdesk.up_state import UpState, clear_state, down, write_state
from shared.db.engine import make_engine, make_sessions
from shared.db.migrate import upgrade
from shared.runtime.embedded import child_env, ensure
from shared.runtime.outbound_guard import UrlPolicy
from shared.runtime.settings import get_settings
from shared.tenancy.tenant_apply import apply, load_spec

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
app = typer.Typer(help="FrontDesk: AI phone receptionist platform.", no_args_is_help=True)
tenant = typer.Typer(help="Manage businesses.", no_args_is_help=True)
app.add_typer(tenant, name="tenant")
apikey = typer.Typer(help="Manage admin API keys.", no_args_is_help=True)
app.add_typer(apikey, name="apikey")
app.add_typer(deadletters, name="deadletters")  # issue 13: frontdesk/deadletter_commands.py


@app.command()
def migrate() -> None:
    """Apply database migrations (DATABASE_URL, or the embedded Postgres)."""
    settings = get_settings()
    embedded = ensure(settings.redis_url or "unused", settings.database_url, settings.embedded_dir)
    try:
        upgrade(embedded.database_url)
        typer.echo("migrated")
    finally:
        embedded.stop()


@tenant.command("apply")
def tenant_apply(file: Path) -> None:
    """Create or update a whole business from a YAML file."""
    settings = get_settings()
    embedded = ensure(settings.redis_url or "unused", settings.database_url, settings.embedded_dir)

    async def run() -> str:
        engine = make_engine(embedded.database_url)
        try:
            async with make_sessions(engine)() as session:
                return await apply(session, load_spec(file), UrlPolicy.from_settings(settings))
        finally:
            await engine.dispose()

    try:
        upgrade(embedded.database_url)
        typer.echo(f"applied {file} -> tenant {asyncio.run(run())}")
    except (OSError, ValueError) as exc:  # unreadable file, invalid spec, refused change
        typer.echo(f"cannot apply {file}: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        embedded.stop()


@apikey.command("create")
def apikey_create(
    tenant_slug: str = typer.Option(..., "--tenant", help="Slug of the tenant the key is for."),
    name: str = typer.Option("default", "--name", help="Label to tell keys apart."),
) -> None:
    """Create an admin API key for one tenant and print it (it is shown only this once)."""
    from shared.tenancy.api_keys import UnknownTenantError, create_for_tenant

    settings = get_settings()
    embedded = ensure(settings.redis_url or "unused", settings.database_url, settings.embedded_dir)

    async def run() -> str:
        engine = make_engine(embedded.database_url)
        try:
            async with make_sessions(engine)() as session:
                return await create_for_tenant(session, tenant_slug, name)
        finally:
            await engine.dispose()

    try:
        upgrade(embedded.database_url)
        typer.echo(asyncio.run(run()))
    except (UnknownTenantError, ValueError) as exc:
        typer.echo(f"cannot create key: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        embedded.stop()


@apikey.command("list")
def apikey_list(
    tenant_slug: str | None = typer.Option(None, "--tenant", help="Only this tenant's keys."),
) -> None:
    """List admin API keys (id, tenant, name, created, last used, revoked); never the keys."""
    from shared.tenancy.api_keys import KeyInfo, list_keys

    settings = get_settings()
    embedded = ensure(settings.redis_url or "unused", settings.database_url, settings.embedded_dir)

    async def run() -> list[KeyInfo]:
        engine = make_engine(embedded.database_url)
        try:
            async with make_sessions(engine)() as session:
                return await list_keys(session, tenant_slug)
        finally:
            await engine.dispose()

    def when(moment: datetime | None) -> str:
        return moment.isoformat(timespec="seconds") if moment else "-"

    try:
        upgrade(embedded.database_url)
        for key in asyncio.run(run()):
            state = f"revoked {when(key.revoked_at)}" if key.revoked_at else "active"
            typer.echo(
                f"{key.id}\t{key.tenant_slug}\t{key.name}\tcreated {when(key.created_at)}"
                f"\tlast used {when(key.last_used_at)}\t{state}"
            )
    finally:
        embedded.stop()


@apikey.command("revoke")
def apikey_revoke(key_id: str = typer.Argument(..., help="The key's id (`apikey list`).")) -> None:
    """Revoke an admin API key: requests with it get a 401 from now on."""
    from shared.tenancy.api_keys import KeyInfo, revoke

    settings = get_settings()
    embedded = ensure(settings.redis_url or "unused", settings.database_url, settings.embedded_dir)

    async def run() -> KeyInfo | None:
        engine = make_engine(embedded.database_url)
        try:
            async with make_sessions(engine)() as session:
                return await revoke(session, key_id)
        finally:
            await engine.dispose()

    try:
        upgrade(embedded.database_url)
        info = asyncio.run(run())
    finally:
        embedded.stop()
    if info is None:
        typer.echo(f"no API key with id {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {info.id} ({info.tenant_slug}, {info.name})")


@app.command()
def up(
    sims: bool = typer.Option(True, help="Also start the provider simulators."),
    tenants: list[Path] = typer.Option(  # noqa: B008
        [
            Path("deploy/tenants/daves-barbershop.yaml"),
            Path("deploy/tenants/sunrise-dental.yaml"),
            Path("deploy/tenants/luigis-trattoria.yaml"),
        ],
        help="Tenant YAML files to apply.",
    ),
    speech: str = typer.Option(
        "sim",
        help="Speech: sim (scripted simulators) or local (services/speech hears and speaks every"
        " call; what `make up` and `frontdesk call` use).",
    ),
    redis_cluster: bool = typer.Option(
        False,
        "--redis-cluster",
        help="Start a local 3-master Redis Cluster (Debian's redis-server) and run on it.",
    ),
    replicas: str = typer.Option(
        "",
        help="Replicas per service, e.g. media=3,gateway=2,brain=2,tools=2,recorder=2: gateway"
        " and media then sit behind HAProxy on the gateway/media ports (docs/scaling.md).",
    ),
) -> None:
    """Run all five services (and the simulators) until Ctrl-C."""
    if speech not in ("sim", "local"):
        typer.echo(f"--speech must be sim or local, not {speech!r}", err=True)
        raise typer.Exit(2)
    try:
        counts = parse_replicas(replicas)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # so sigwait, not death, gets them
    settings = get_settings()
    cluster = start_cluster() if redis_cluster else None
    redis_url = cluster.url if cluster else settings.redis_url
    embedded = ensure(redis_url, settings.database_url, settings.embedded_dir)
    stack = Stack(
        ports=Ports(
            gateway=settings.gateway_port, media=settings.media_port, speech=settings.speech_port
        ),
        log_dir=Path(settings.embedded_dir) / "logs",
        restart=True,
    )
    try:
        upgrade(embedded.database_url)
        for file in tenants:
            tenant_apply_inline(embedded.database_url, file)
        env = child_env(embedded, service_env(stack.ports, with_sims=sims))
        if cluster:
            env["REDIS_CLUSTER"] = "true"
        if sims:
            start_sims(stack, env, policy="sim/policies/daves_barbershop.yaml")
        if speech == "local":  # media's STT and TTS go to our own speech service
            env |= speech_env(stack.ports)
            start_speech(stack, env)
            typer.echo(
                f"speech:  ws://127.0.0.1:{stack.ports.speech} (Whisper, Piper)"
            )
        if replicas:
            run_dir = Path(settings.embedded_dir)
            layout = start_replicated(
                stack, env, counts, run_dir, settings.balancer_check_interval_ms
            ).layout
            for service, ports in layout.replicas.items():
                listed = ", ".join(f"{label} :{port}" for label, port in ports.items())
                typer.echo(f"{service} replicas behind HAProxy: {listed}")
            typer.echo(
                f"HAProxy: {run_dir / 'haproxy.cfg'}; stats"
                f" http://127.0.0.1:{layout.stats_port}/stats"
            )
        else:
            start_services(stack, env)
        typer.echo(f"gateway: http://127.0.0.1:{stack.ports.gateway}/twilio/voice")
        typer.echo(f"media:   ws://127.0.0.1:{stack.ports.media}/twilio/stream")
        typer.echo(f"TWILIO_AUTH_TOKEN={env.get('TWILIO_AUTH_TOKEN', settings.twilio_auth_token)}")
        if sims:
            typer.echo(f"STT sim control: http://127.0.0.1:{stack.ports.stt}/sim/listen/script")
        typer.echo(f"REDIS_URL={embedded.redis_url}")
        if cluster:
            typer.echo(f"REDIS_CLUSTER=true  (nodes on ports {cluster.ports})")
        typer.echo(f"DATABASE_URL={embedded.database_url}")
        typer.echo("  (export both for `frontdesk status`, `apikey`, `deadletters` elsewhere)")
        state = UpState(
            pid=os.getpid(),
            redis_url=embedded.redis_url,
            database_url=embedded.database_url,
            gateway_port=stack.ports.gateway,
            speech=speech,
            speech_port=stack.ports.speech,
        )
        write_state(state, settings.embedded_dir)  # `frontdesk call` and `frontdesk down` read it
        typer.echo(f"logs: {stack.log_dir}  (Ctrl-C or `make down` to stop)")
        while signal.sigtimedwait(STOP_SIGNALS, 0.5) is None:
            stack.restart_crashed()  # a crashed service comes back, as under compose or k8s
    finally:
        clear_state(settings.embedded_dir)
        stack.stop()
        embedded.stop()
        if cluster:
            cluster.stop()


def tenant_apply_inline(database_url: str, file: Path) -> None:
    """Apply one tenant file against a database URL."""

    async def run() -> None:
        engine = make_engine(database_url)
        try:
            async with make_sessions(engine)() as session:
                await apply(session, load_spec(file))
        finally:
            await engine.dispose()

    asyncio.run(run())


@app.command()
def demo(
    speech: str = typer.Option(
        "local", help="local: real speech (Piper + Whisper in services/speech); sim: simulators."
    ),
) -> None:
    """One call to Dave's Barbershop through the whole platform (real speech, scripted LLM)."""
    from sim.demo import run_demo

    if speech not in ("sim", "local"):
        typer.echo(f"--speech must be sim or local, not {speech!r}", err=True)
        raise typer.Exit(2)
    raise typer.Exit(asyncio.run(run_demo(speech)))


@app.command()
def bench(
    calls: int = typer.Option(100, help="Concurrent simulated calls (1..500)."),
    profile: str = typer.Option("zero", help="Provider latency profile: zero, realistic, slow."),
    turns: int = typer.Option(4, help="Caller turns per call (>= 3)."),
    out: Path = typer.Option(Path("bench/results"), help="Directory for the JSON and PNG."),  # noqa: B008
    speech: str = typer.Option(
        "sim", help="local: load the self-hosted speech service alone (levels 1, 2, 4.. calls)."
    ),
    max_p95_s: float = typer.Option(1.5, help="--speech local: p95 STT latency a level may take."),
    replicas: str = typer.Option(
        "",
        help="Media replica counts, e.g. 1,2,4: the same load with each behind HAProxy, one"
        " after another, per-call cost side by side (docs/scaling.md).",
    ),
    redis: str = typer.Option(
        "single", help="With --replicas: single, cluster (a local 3-master cluster) or both."
    ),
) -> None:
    """Benchmark: many concurrent simulated calls through the whole platform, measured."""
    if speech == "local":
        from sim.bench.speech_load import levels_up_to, run_speech_bench

        path = run_speech_bench(levels_up_to(calls), turns, out, max_p95_s)
        typer.echo(f"speech bench report: {path}")
        return
    from frontdesk.barge_in_bench import DEFAULT_POLICY
    from frontdesk.barge_in_bench import run as run_turns
    from sim.bench.replica_sweep import parse_counts, redis_modes, run_replica_sweep
    from sim.bench.runner import BenchOptions, run_bench

    opts = BenchOptions(
        calls=calls,
        profile=profile,
        turns=turns,
        out_dir=out,
        labelled_turns=run_turns()[DEFAULT_POLICY],  # ~8 s: the labelled clips, frame by frame
    )
    try:
        opts.validate()
        counts = parse_counts(replicas) if replicas else []
        modes = redis_modes(redis)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    if counts:
        run_replica_sweep(opts, counts, modes)
    else:
        run_bench(opts)


app.command()(status)
app.command()(call)  # issue 15: frontdesk/call_command.py
app.command()(down)  # stops a running `frontdesk up` (frontdesk/up_state.py)


@app.command("bench-turns")
def bench_turns(
    stt_latency_ms: int = typer.Option(200, help="STT delay after the audio it covers (ms)."),
    out: Path | None = typer.Option(None, help="Also write the figures here as JSON."),  # noqa: B008
) -> None:
    """Barge-in on the labelled clip set (tests/assets/clips): false and missed interrupts and
    reaction, before and after; and the CPU of one end-of-turn decision."""
    from frontdesk.barge_in_bench import command

    command(stt_latency_ms, out)


if __name__ == "__main__":
    app()
