"""Process start-up shared by every service: settings, logging, tracing."""

from __future__ import annotations

import asyncio
import cProfile
import signal
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import uvloop

from shared.runtime.logs import setup_logging
from shared.runtime.secrets_guard import refuse_weak_secrets
from shared.runtime.settings import Settings, get_settings
from shared.runtime.telemetry import setup_tracing


def service_settings(service: str) -> Settings:
    """Read settings and set up logging and tracing for one service process.

    Services need REDIS_URL and DATABASE_URL; the launcher (`frontdesk up`, the demo, the tests)
    starts embedded servers and passes their URLs when none are configured.
    """
    settings = get_settings()
    setup_logging(service, level_for(service, settings), settings.log_json)
    span_file = settings.otel_file.format(service=service) if settings.otel_file else None
    setup_tracing(
        service,
        console=settings.otel_console,
        file=span_file,
        otlp_endpoint=settings.otel_exporter_otlp_endpoint,
        otlp_batch_delay_ms=settings.otel_batch_delay_ms,
    )
    if not settings.redis_url or not settings.database_url:
        raise SystemExit(
            f"{service}: REDIS_URL and DATABASE_URL must be set "
            "(or start everything with `frontdesk up`, which runs embedded servers)"
        )
    refuse_weak_secrets(settings, service)
    return settings


def level_for(service: str, settings: Settings) -> str:
    """The service's log level: its entry in LOG_LEVELS ('media=WARNING,...'), else LOG_LEVEL."""
    for item in settings.log_levels.split(","):
        name, _, level = item.partition("=")
        if name.strip() == service and level.strip():
            return level.strip().upper()
    return settings.log_level


def stop_on_signals() -> asyncio.Event:
    """An event set on SIGTERM/SIGINT, for graceful drain."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def run_service(main: Coroutine[Any, Any, None]) -> None:
    """Run a service's main coroutine on uvloop, the event loop uvicorn gives media and the
    gateway (cheaper per socket read, timer and task switch than asyncio's default loop)."""
    uvloop.run(main)


@contextmanager
def profiled(settings: Settings, service: str) -> Iterator[None]:
    """cProfile the block when `PROFILE_FILE` is set (read it with `python -m pstats`): py-spy
    missed most of media's Python frames under uvloop (about 3 % of its busy time sampled)."""
    if not settings.profile_file:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(settings.profile_file.format(service=service))
