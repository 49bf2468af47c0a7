"""Test helper: serve an ASGI app (a simulator) on a free loopback port inside the test loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette

from sim.tls import TlsFiles


@asynccontextmanager
async def serve_app(app: Starlette, tls: TlsFiles | None = None) -> AsyncIterator[int]:
    """Run `app` on a free loopback port (TLS when `tls` is given); yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    extra: dict[str, Any] = {}
    if tls is not None:
        extra = {"ssl_certfile": str(tls.cert_chain_pem), "ssl_keyfile": str(tls.key_pem)}
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ws="websockets-sansio", **extra
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server exited before starting")
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task
        sock.close()
