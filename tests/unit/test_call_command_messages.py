"""What `frontdesk call` and `frontdesk down` tell a new user (issue 15, speech15): the state a
running `frontdesk up` leaves, and the messages when the platform or the number is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frontdesk.call_command import _not_connected
from frontdesk.cli import app
from frontdesk.up_state import UpState, clear_state, read_state, state_path, write_state
from services.gateway.twiml import unknown_number
from sim.twilio_call_model import CallResult


def state(pid: int, speech: str = "local") -> UpState:
    return UpState(
        pid=pid,
        redis_url="unix:///tmp/x/redis.socket",
        database_url="postgresql://postgres@/frontdesk",
        gateway_port=1,  # nothing answers there
        speech=speech,
        speech_port=2,
    )


def test_the_state_of_a_running_up_is_read_back_and_a_dead_one_is_not(tmp_path: Path) -> None:
    write_state(state(os.getpid()), str(tmp_path))
    assert read_state(str(tmp_path)) == state(os.getpid())
    clear_state(str(tmp_path))
    assert not state_path(str(tmp_path)).exists()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    write_state(state(int(gone.stdout)), str(tmp_path))
    assert read_state(str(tmp_path)) is None  # its process has exited


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory of its own, no REDIS_URL from outside."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("EMBEDDED_DIR", raising=False)
    from shared.runtime.settings import get_settings

    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()  # later tests read their own environment again


def call(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["call", *args])
    return result.exit_code, result.output


def test_no_platform_running_says_how_to_start_one(in_tmp: Path) -> None:
    code, out = call("--to", "+441632960001", "--say", "Hello?")
    assert code == 2 and "make up" in out and "no running platform" in out


def test_a_number_without_plus_is_refused_before_anything(in_tmp: Path) -> None:
    code, out = call("--to", "441632960001", "--say", "Hello?")
    assert code == 2 and "E.164" in out and "+441632960001" in out


def test_a_platform_on_simulated_speech_cannot_hear_a_speaking_caller(in_tmp: Path) -> None:
    write_state(state(os.getpid(), speech="sim"), str(in_tmp / ".frontdesk"))
    code, out = call("--to", "+441632960001", "--say", "Hello?")
    assert code == 2 and "--speech local" in out and "make down" in out


def test_an_unreachable_gateway_is_named(in_tmp: Path) -> None:
    write_state(state(os.getpid()), str(in_tmp / ".frontdesk"))
    code, out = call("--to", "+441632960001", "--say", "Hello?")
    assert code == 2 and "no FrontDesk gateway answers at http://127.0.0.1:1" in out


def test_an_unknown_number_says_what_the_gateway_said_and_which_numbers_exist() -> None:
    result = CallResult(call_sid="CA1", account_sid="AC1", webhook_status=200)
    result.twiml = unknown_number()
    message = _not_connected(result, "+15555550100")
    assert "not in service" in message and "+441632960001 (Dave's Barbershop)" in message
