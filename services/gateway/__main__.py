"""`python -m services.gateway`: run the gateway with uvicorn."""

from __future__ import annotations

import uvicorn

from services.gateway.app import create_app
from shared.runtime.process import service_settings


def main() -> None:
    settings = service_settings("gateway")
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
