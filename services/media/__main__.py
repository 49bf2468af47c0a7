"""`python -m services.media`: run a media replica with uvicorn."""

from __future__ import annotations

import uvicorn

from services.media.app import create_app
from shared.runtime.process import service_settings


def main() -> None:
    settings = service_settings("media")
    uvicorn.run(
        create_app(settings),
        host=settings.media_host,
        port=settings.media_port,
        log_level="warning",
        ws_max_size=settings.media_ws_max_bytes,
    )


if __name__ == "__main__":
    main()
