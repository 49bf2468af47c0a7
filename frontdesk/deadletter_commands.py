"""`frontdesk deadletters list|retry`: what the platform gave up on, and trying it again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.recorder.dead_letters.retry import dead_letters, retry
from shared.bus.streams import connect
from shared.db.engine import make_engine, make_sessions
from shared.db.migrate import upgrade
from shared.runtime.embedded import ensure
from shared.runtime.settings import get_settings

T = TypeVar("T")
deadletters = typer.Typer(help="Entries the platform gave up on.", no_args_is_help=True)


def _run(work: Callable[[async_sessionmaker[AsyncSession], Redis], Awaitable[T]]) -> T:
    settings = get_settings()
    embedded = ensure(settings.redis_url, settings.database_url, settings.embedded_dir)

    async def run() -> T:
        engine = make_engine(embedded.database_url)
        redis = connect(embedded.redis_url, cluster=settings.redis_cluster)
        try:
            return await work(make_sessions(engine), redis)
        finally:
            await redis.aclose()
            await engine.dispose()

    try:
        upgrade(embedded.database_url)
        return asyncio.run(run())
    finally:
        embedded.stop()


@deadletters.command("list")
def list_dead_letters(
    all_: bool = typer.Option(False, "--all", help="Also those already retried."),
) -> None:
    """One line per dead letter: id, stream, entry, call, attempts, error."""
    rows = _run(lambda sessions, _: dead_letters(sessions, include_retried=all_))
    for row in rows:
        typer.echo(
            f"{row.id}\t{row.status}\t{row.stream}\t{row.entry_id}\t{row.call_sid or '-'}\t"
            f"attempts={row.attempts}\t{row.error[:160]}"
        )
    if not rows:
        typer.echo("no dead letters")


@deadletters.command("retry")
def retry_dead_letters(
    ids: list[int] = typer.Argument(None, help="Dead letter ids (see `list`)."),  # noqa: B008
    all_: bool = typer.Option(False, "--all", help="Retry every dead letter."),
) -> None:
    """Process dead letters again; exits 1 if any still fails."""
    if not ids and not all_:
        typer.echo("give dead letter ids, or --all", err=True)
        raise typer.Exit(2)
    outcomes = _run(lambda sessions, redis: retry(sessions, redis, None if all_ else ids))
    for outcome in outcomes:
        typer.echo(f"{outcome.id}\t{'ok' if outcome.ok else 'FAILED'}\t{outcome.detail}")
    if any(not outcome.ok for outcome in outcomes):
        raise typer.Exit(1)
