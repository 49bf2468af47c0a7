"""A tiny round-robin TCP proxy: "whichever media replica is alive" for failover tests.

Each accepted connection goes to the next backend in turn; a backend that refuses the
connection is skipped. Bytes are piped both ways; when either side closes (or a backend is
killed), the other side is closed too. It runs its own event loop in a thread, so tests that
block (process kills, waits) never stall it. A real load balancer comes with a later issue.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading

from frontdesk.supervisor import free_port


class RoundRobinProxy:
    """Listens on 127.0.0.1:`port` and forwards to `backends` (ports on 127.0.0.1)."""

    def __init__(self, backends: list[int]) -> None:
        self.port = free_port()
        self.backends = backends
        self._turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> RoundRobinProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        future.result(timeout=10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        first = next(self._turn)
        for i in range(len(self.backends)):
            port = self.backends[(first + i) % len(self.backends)]
            try:
                return await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
        return None

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        backend = await self._connect()
        if backend is None:
            client_w.close()
            return
        backend_r, backend_w = backend
        self._writers |= {client_w, backend_w}
        try:
            await asyncio.gather(_pipe(client_r, backend_w), _pipe(backend_r, client_w))
        finally:
            self._writers -= {client_w, backend_w}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()
