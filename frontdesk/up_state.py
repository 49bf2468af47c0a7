"""What a running `frontdesk up` tells the other commands, and `frontdesk down`.

`frontdesk up` writes `<EMBEDDED_DIR>/up.json` (its pid, the Redis and Postgres URLs it uses,
which may be an embedded Redis on a random socket, the gateway and speech ports, and whether
speech is local) and removes it when it stops. `frontdesk call` reads it, so a new user needs
no `export REDIS_URL=...` in a second terminal; `frontdesk down` (`make down`) stops that
`frontdesk up` with SIGTERM, which stops everything it started (services, simulators, the
speech service, embedded Redis and Postgres) as Ctrl-C does.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import typer
from pydantic import BaseModel, ValidationError

from shared.runtime.settings import get_settings

STATE_FILE = "up.json"
DOWN_WAIT_S = 60.0


class UpState(BaseModel):
    """A running `frontdesk up`."""

    pid: int
    redis_url: str
    database_url: str
    gateway_port: int
    speech: str  # 'local' (the speech service runs) or 'sim'
    speech_port: int


def state_path(embedded_dir: str | None = None) -> Path:
    """Where `frontdesk up` leaves its state."""
    return Path(embedded_dir or get_settings().embedded_dir) / STATE_FILE


def write_state(state: UpState, embedded_dir: str) -> Path:
    """Record a running `frontdesk up` (called once everything answers)."""
    path = state_path(embedded_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(state.model_dump_json(indent=2) + "\n")
    return path


def clear_state(embedded_dir: str) -> None:
    """Forget it (at stop); only our own file."""
    path = state_path(embedded_dir)
    state = read_state(embedded_dir)
    if state is not None and state.pid == os.getpid():
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state(embedded_dir: str | None = None) -> UpState | None:
    """The running `frontdesk up` of this directory, or None (none, or its process is gone)."""
    path = state_path(embedded_dir)
    try:
        state = UpState.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError):
        return None
    return state if _alive(state.pid) else None


def down(
    wait_s: float = typer.Option(DOWN_WAIT_S, help="How long to wait for it to stop."),
) -> None:
    """Stop the `frontdesk up` running from this directory (what Ctrl-C in its terminal does)."""
    state = read_state()
    if state is None:
        typer.echo(f"no running `frontdesk up` here ({state_path()} names none): nothing to stop")
        return
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while _alive(state.pid):
        if time.monotonic() > deadline:
            typer.echo(f"frontdesk up (pid {state.pid}) is still stopping after {wait_s:g} s")
            raise typer.Exit(1)
        time.sleep(0.2)
    typer.echo(f"stopped frontdesk up (pid {state.pid}) and everything it started")
