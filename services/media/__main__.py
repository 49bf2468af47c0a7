"""`python -m services.media`: run a media replica with uvicorn.

SIGTERM drains before uvicorn's own shutdown (which would close every WebSocket with 1012):
new streams are refused, live calls get `MEDIA_DRAIN_S` to finish, the rest move to another
replica through after-stream; then uvicorn stops. A second SIGTERM (or SIGINT) stops at once.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from types import FrameType

import uvicorn

from services.media.app import create_app
from shared.runtime.process import service_settings


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first SIGTERM runs `drain()` before shutting down."""

    def __init__(self, config: uvicorn.Config, drain: Callable[[], Awaitable[None]]) -> None:
        super().__init__(config)
        self._drain = drain
        self._draining: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self._draining is None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._start_drain)
            return
        super().handle_exit(sig, frame)

    def _start_drain(self) -> None:
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain_then_exit(), name="drain")

    async def _drain_then_exit(self) -> None:
        try:
            await self._drain()
        finally:
            super().handle_exit(signal.SIGTERM, None)


def main() -> None:
    settings = service_settings("media")
    app = create_app(settings)

    async def drain() -> None:
        await app.state.drain()

    config = uvicorn.Config(
        app,
        host=settings.media_host,
        port=settings.media_port,
        log_level="warning",
        ws_max_size=settings.media_ws_max_bytes,
    )
    DrainingServer(config, drain).run()


if __name__ == "__main__":
    main()
