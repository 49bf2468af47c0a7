"""Pure pieces of issue 13: which errors are transient, the supervisor's restart backoff, the
end reason of a max-duration hang-up, and prices in the tenant's currency."""

from __future__ import annotations

import sys
from pathlib import Path

import asyncpg
from redis.exceptions import BusyLoadingError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DataError, OperationalError

from frontdesk.supervisor import RESTART_BACKOFF_S, Ports, Stack
from services.media.call_control import MAX_DURATION, _reason
from shared.contract import events as ev
from shared.runtime.outage import backoff, is_transient
from shared.tenancy.pricing import EXAMPLE_PRICE_BOOK, PriceTableError, load_price_book


def test_connection_errors_are_transient_and_bad_data_is_not() -> None:
    assert is_transient(RedisConnectionError("gone"))
    assert is_transient(BusyLoadingError("loading AOF"))
    assert is_transient(ConnectionRefusedError())
    assert is_transient(OperationalError("select 1", {}, asyncpg.CannotConnectNowError()))
    assert not is_transient(ResponseError("WRONGTYPE"))
    assert not is_transient(DataError("insert", {}, ValueError("value too long")))
    assert not is_transient(KeyError("call_sid"))


def test_backoff_grows_and_is_capped() -> None:
    delay = backoff()
    waits = [delay(n) for n in range(1, 12)]
    assert waits[0] < waits[3] < waits[6]
    assert max(waits) <= 2.0 + 0.05


def test_supervisor_restarts_a_crashed_process_with_growing_backoff(tmp_path: Path) -> None:
    stack = Stack(ports=Ports(), log_dir=tmp_path, restart=True)
    try:
        proc = stack.spawn("crashy", [sys.executable, "-c", "raise SystemExit(3)"], {})
        proc.wait(timeout=30)
        t = 1000.0
        assert stack.restart_crashed(now=t) == []  # first crash: wait RESTART_BACKOFF_S[0]
        assert stack.restart_crashed(now=t + RESTART_BACKOFF_S[0]) == ["crashy"]
        second = stack.procs["crashy"]
        assert second is not proc
        second.wait(timeout=30)
        stack._crashes["crashy"].started_at = t  # it crashed again at once
        assert stack.restart_crashed(now=t + 0.1) == []
        assert stack.restart_crashed(now=t + 0.1 + RESTART_BACKOFF_S[0]) == []  # longer now
        assert stack.restart_crashed(now=t + 0.1 + RESTART_BACKOFF_S[1]) == ["crashy"]
    finally:
        stack.stop()


def test_without_restart_a_crash_stays_visible(tmp_path: Path) -> None:
    stack = Stack(ports=Ports(), log_dir=tmp_path)
    try:
        stack.spawn("crashy", [sys.executable, "-c", "raise SystemExit(3)"], {}).wait(timeout=30)
        assert stack.restart_crashed(now=10**9) == []
        assert stack.procs["crashy"].poll() == 3
    finally:
        stack.stop()


def test_a_max_duration_hang_up_is_recorded_as_max_duration() -> None:
    def intent(kind: str, reason: str) -> ev.CallIntent:
        return ev.CallIntent(call_sid="CA1", kind=kind, reason=reason, turn_id=3)  # type: ignore[arg-type]

    assert _reason(intent("end", MAX_DURATION)) == "max-duration"
    assert _reason(intent("end", "caller asked")) == "agent-ended"
    assert _reason(intent("transfer", "caller pressed a key")) == "transfer"


def test_calls_are_priced_in_the_tenants_currency() -> None:
    assert EXAMPLE_PRICE_BOOK.for_currency("GBP").currency == "GBP"
    assert EXAMPLE_PRICE_BOOK.for_currency("usd").currency == "USD"
    assert EXAMPLE_PRICE_BOOK.for_currency("JPY").currency == "USD"  # no table: the first
    book = load_price_book(
        '[{"currency": "EUR", "prices": [{"provider": "*", "metric": "stt_seconds",'
        ' "unit_price_minor": "1"}]}, {"currency": "GBP", "prices": []}]'
    )
    assert book.for_currency("GBP").currency == "GBP"
    assert book.for_currency(None).currency == "EUR"
    assert load_price_book('{"currency": "GBP", "prices": []}').tables[0].currency == "GBP"
    try:
        load_price_book("[1]")
    except PriceTableError:
        pass
    else:
        raise AssertionError("a list of non-tables was accepted")
