"""What the metrics middleware adds per WebSocket message: N receive+send pairs through a
bare ASGI app and through `MetricsMiddleware` around it (uvloop, no network), interleaved.

    uv run python -m sim.bench.metrics_cost [--pairs 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import uvloop

from shared.observability.asgi import MetricsMiddleware
from shared.observability.metrics import Metrics


class _Route:
    path = "/twilio/stream"


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    scope["route"] = _Route()
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": "x"})


async def per_pair_us(pairs: int, wrapped: bool) -> float:
    """Microseconds per receive+send pair."""
    frame = {"type": "websocket.receive", "text": "frame"}
    messages = iter([frame] * pairs + [{"type": "websocket.disconnect", "code": 1000}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(_: dict[str, Any]) -> None:
        return None

    app: Any = MetricsMiddleware(_echo, Metrics("media")) if wrapped else _echo
    began = time.perf_counter()
    await app({"type": "websocket", "path": "/twilio/stream"}, receive, send)
    return (time.perf_counter() - began) / pairs * 1e6


async def main(pairs: int, rounds: int) -> None:
    bare: list[float] = []
    wrapped: list[float] = []
    for _ in range(rounds):
        bare.append(await per_pair_us(pairs, wrapped=False))
        wrapped.append(await per_pair_us(pairs, wrapped=True))
    print("bare app, us per receive+send:    ", [round(x, 3) for x in bare])
    print("with middleware, us per pair:      ", [round(x, 3) for x in wrapped])
    print("added by the middleware (min-min): ", round(min(wrapped) - min(bare), 3), "us")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    uvloop.run(main(args.pairs, args.rounds))
