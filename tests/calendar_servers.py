"""Calendar servers for tests, as pytest fixtures over real sockets:

- `radicale_server`: a real Radicale CalDAV server (subprocess, htpasswd auth, filesystem
  storage in a temp dir) with one calendar made by MKCALENDAR; `new_calendar()` makes more.
- `google_calendar_sim`: sim/google_calendar_server.py under uvicorn in a thread.
- `failing_http_server`: answers HTTP 500 to everything (a broken CalDAV server).
- `refused_url`: a URL on a port nothing listens on (connection refused).
- `calendar_sessions`: an async session factory on the test database, and helpers that
  insert a shop (tenant, staff, service, customer), connections and bookings with the ORM.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from frontdesk.supervisor import Ports, Stack, free_port, wait_http
from shared.db.engine import make_engine, make_sessions
from shared.db.models import Booking, CalendarConnection, Customer, Resource, Service, Tenant
from sim.google_calendar_server import GoogleCalendarSimOptions, create_app
from tests.conftest import Infra

RADICALE_USER = "dave"
RADICALE_PASSWORD = "radicale-secret"
GOOGLE_TOKEN = "sim-google-token"


@dataclass
class RadicaleServer:
    """A running Radicale and the credentials of its one user."""

    base_url: str
    username: str
    password: str
    calendar_url: str

    def client(self) -> httpx.Client:
        return httpx.Client(auth=(self.username, self.password), timeout=10)

    def new_calendar(self, name: str | None = None) -> str:
        """MKCALENDAR a fresh calendar collection; returns its URL (with trailing slash)."""
        url = f"{self.base_url}/{self.username}/{name or uuid.uuid4().hex[:12]}/"
        with self.client() as http:
            response = http.request("MKCALENDAR", url)
        if response.status_code != 201:
            raise RuntimeError(f"MKCALENDAR {url} answered {response.status_code}")
        return url


@dataclass
class GoogleCalendarSim:
    """A running Google Calendar simulator."""

    base_url: str
    token: str

    def new_calendar(self, latency_ms: float = 0, time_zone: str = "UTC") -> str:
        """Create a fresh calendar (optionally slow); returns its id."""
        calendar_id = f"{uuid.uuid4().hex[:10]}@group.calendar.google.com"
        response = httpx.put(
            f"{self.base_url}/sim/calendars/{calendar_id}",
            json={"latency_ms": latency_ms, "time_zone": time_zone},
        )
        response.raise_for_status()
        return calendar_id


def _write_radicale_config(root: Path, port: int) -> Path:
    users = root / "users"
    users.write_text(f"{RADICALE_USER}:{RADICALE_PASSWORD}\n")
    config = root / "config"
    config.write_text(
        "[server]\n"
        f"hosts = 127.0.0.1:{port}\n"
        "[auth]\n"
        "type = htpasswd\n"
        f"htpasswd_filename = {users}\n"
        "htpasswd_encryption = plain\n"
        "delay = 0\n"
        "[storage]\n"
        f"filesystem_folder = {root / 'collections'}\n"
        "[logging]\n"
        "level = warning\n"
    )
    return config


@pytest.fixture(scope="session")
def radicale_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    root = tmp_path_factory.mktemp("radicale")
    port = free_port()
    config = _write_radicale_config(root, port)
    stack = Stack(ports=Ports(), log_dir=root / "logs")
    try:
        stack.spawn("radicale", [sys.executable, "-m", "radicale", "--config", str(config)], {})
        base_url = f"http://127.0.0.1:{port}"
        wait_http(f"{base_url}/.web/", stack, timeout_s=30)
        server = RadicaleServer(base_url, RADICALE_USER, RADICALE_PASSWORD, calendar_url="")
        server.calendar_url = server.new_calendar("calendar")
        yield server
    finally:
        stack.stop()


def _serve_in_thread(app: Starlette) -> Iterator[str]:
    """Run an ASGI app under uvicorn in a daemon thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # A slow-calendar test leaves a request sleeping in the app: don't wait for it at exit.
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="session")
def google_calendar_sim() -> Iterator[GoogleCalendarSim]:
    app = create_app(GoogleCalendarSimOptions(access_tokens=[GOOGLE_TOKEN]))
    for base_url in _serve_in_thread(app):
        yield GoogleCalendarSim(base_url=base_url, token=GOOGLE_TOKEN)


async def _internal_error(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Internal Server Error", status_code=500)


@pytest.fixture(scope="session")
def failing_http_server() -> Iterator[str]:
    methods = ["GET", "PUT", "DELETE", "REPORT", "PROPFIND", "POST"]
    app = Starlette(routes=[Route("/{path:path}", _internal_error, methods=methods)])
    yield from _serve_in_thread(app)


@pytest.fixture
def refused_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest_asyncio.fixture
async def calendar_sessions(infra: Infra) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(infra.database_url, pool_size=2)
    try:
        yield make_sessions(engine)
    finally:
        await engine.dispose()


@dataclass
class Shop:
    """A tenant seeded for calendar tests: two staff, one service, one customer."""

    tenant_id: str
    dave: int
    bob: int
    service_id: str
    customer_id: str


async def seed_shop(session: AsyncSession, timezone: str = "Europe/London") -> Shop:
    """Insert a fresh tenant with Dave and Bob, a haircut and a customer (committed)."""
    tenant = Tenant(
        slug=f"cal-{uuid.uuid4().hex[:10]}", name="Dave's Barbershop", timezone=timezone
    )
    session.add(tenant)
    await session.flush()
    dave = Resource(tenant_id=tenant.id, name="Dave")
    bob = Resource(tenant_id=tenant.id, name="Bob")
    service = Service(tenant_id=tenant.id, name="Haircut", duration_min=30, price_minor=2000)
    customer = Customer(tenant_id=tenant.id, phone="+447700900123", name="Sam Jones")
    session.add_all([dave, bob, service, customer])
    await session.commit()
    return Shop(tenant.id, dave.id, bob.id, service.id, customer.id)


async def add_connection(
    session: AsyncSession,
    shop: Shop,
    kind: str,
    config: dict[str, Any],
    resource_id: int | None,
    timeout_ms: int = 2000,
) -> CalendarConnection:
    """Insert (and commit) a calendar connection of the shop."""
    connection = CalendarConnection(
        tenant_id=shop.tenant_id,
        resource_id=resource_id,
        kind=kind,
        config=config,
        timeout_ms=timeout_ms,
    )
    session.add(connection)
    await session.commit()
    return connection


async def add_booking(
    session: AsyncSession, shop: Shop, resource_id: int, starts_at: datetime, minutes: int = 30
) -> Booking:
    """Insert (and commit) a confirmed booking of the shop's haircut."""
    booking = Booking(
        tenant_id=shop.tenant_id,
        customer_id=shop.customer_id,
        service_id=shop.service_id,
        resource_id=resource_id,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes),
        blocked_until=starts_at + timedelta(minutes=minutes),
        notes="Skin fade",
    )
    session.add(booking)
    await session.commit()
    return booking
