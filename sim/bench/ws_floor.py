"""The framework's share of a media frame: a bare uvicorn + Starlette WebSocket endpoint.

    uv run python -m sim.bench.ws_floor --clients 40 --seconds 10 [--parse]

N clients send Twilio `media` frames at 50 per second; the endpoint (in a child process, on
uvicorn's default loop and WebSocket implementation, as media runs) only receives them, or
with --parse also runs media's Twilio parser. Prints the endpoint's CPU per frame: what any
Python media service on this stack pays before doing anything with the audio.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import socket
import time

import psutil
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from services.media.twilio import protocol as tw


def _serve(port: int, parse: bool) -> None:
    import uvicorn

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if parse:
                tw.parse(message["text"])

    app = Starlette(routes=[WebSocketRoute("/s", endpoint)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


async def _clients(port: int, clients: int, seconds: float) -> int:
    from websockets.asyncio.client import connect

    payload = base64.b64encode(b"\xff" * 160).decode()
    media = {"track": "inbound", "chunk": "1", "timestamp": "20", "payload": payload}
    text = json.dumps(
        {"event": "media", "sequenceNumber": "1", "media": media, "streamSid": "MZ" + "a" * 32}
    )

    async def one() -> int:
        async with connect(f"ws://127.0.0.1:{port}/s", compression=None) as ws:
            start, sent = time.monotonic(), 0
            while time.monotonic() - start < seconds:
                await ws.send(text)
                sent += 1
                await asyncio.sleep(max(0.0, start + sent * 0.02 - time.monotonic()))
            return sent

    return sum(await asyncio.gather(*(one() for _ in range(clients))))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sim.bench.ws_floor", description=__doc__)
    p.add_argument("--clients", type=int, default=40)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--parse", action="store_true")
    args = p.parse_args(argv)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = multiprocessing.Process(target=_serve, args=(port, args.parse), daemon=True)
    server.start()
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    proc = psutil.Process(server.pid)
    before = proc.cpu_times()
    frames = asyncio.run(_clients(port, args.clients, args.seconds))
    after = proc.cpu_times()
    cpu = after.user + after.system - before.user - before.system
    what = "receive + parse" if args.parse else "receive only"
    print(f"{what}: {frames} frames, endpoint CPU {cpu:.2f} s = {cpu / frames * 1e6:.1f} us/frame")
    server.terminate()


if __name__ == "__main__":
    main()
