"""Media opens Deepgram sockets itself: the same URL and headers the SDK would send, but no
permessage-deflate offer (µ-law audio does not compress; deflate cost CPU on every frame)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from deepgram import AsyncDeepgramClient
from deepgram.environment import DeepgramClientEnvironment
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from services.media.deepgram_socket import open_deepgram_socket, send_binary_now
from services.media.provider_clients import ProviderClients
from shared.bus.waiting import within
from shared.runtime.settings import Settings

LISTEN = {
    "model": "nova-3",
    "encoding": "mulaw",
    "sample_rate": 8000,
    "channels": 1,
    "interim_results": "true",
    "endpointing": 300,
    "utterance_end_ms": 1000,
    "vad_events": "true",
    "smart_format": "true",
    "tag": "CA123",
    "keyterm": ["haircut", "Dave's"],
    "extra": "audio_offset_ms:2000",
}


async def _handshakes(open_both: Any) -> list[Request]:
    seen: list[Request] = []

    def record(_: ServerConnection, request: Request) -> None:
        seen.append(request)

    async def echo_close(ws: ServerConnection) -> None:
        await ws.close()

    async with serve(echo_close, "127.0.0.1", 0, process_request=record) as server:
        port = server.sockets[0].getsockname()[1]
        await open_both(f"ws://127.0.0.1:{port}")
    return seen


async def test_listen_socket_matches_the_sdk_but_offers_no_compression() -> None:
    clients = ProviderClients(Settings())

    async def open_both(base: str) -> None:
        env = DeepgramClientEnvironment(base=base, production=base, agent=base, agent_rest=base)
        sdk = AsyncDeepgramClient(api_key="dg-key", environment=env)
        async with sdk.listen.v1.connect(**LISTEN) as conn:
            async for _ in conn:
                pass
        async with open_deepgram_socket(
            clients,
            base=base,
            path="/v1/listen",
            api_key="dg-key",
            params=LISTEN,
            open_timeout_s=5.0,
        ) as ws:
            async for _ in ws:
                pass

    sdk_request, ours = await _handshakes(open_both)
    ours_url, sdk_url = urlsplit(ours.path), urlsplit(sdk_request.path)
    assert ours_url.path == sdk_url.path == "/v1/listen"
    assert sorted(parse_qsl(ours_url.query)) == sorted(parse_qsl(sdk_url.query))
    assert ("keyterm", "Dave's") in parse_qsl(ours_url.query)
    for header in ("Authorization", "User-Agent", "X-Fern-SDK-Name", "X-Fern-SDK-Version"):
        assert ours.headers[header] == sdk_request.headers[header]
    assert "permessage-deflate" in sdk_request.headers.get("Sec-WebSocket-Extensions", "")
    assert "Sec-WebSocket-Extensions" not in ours.headers
    await clients.aclose()


async def test_audio_written_at_once_arrives_as_one_binary_message_each() -> None:
    got: list[bytes | str] = []
    done = asyncio.Event()

    async def collect(ws: ServerConnection) -> None:
        async for message in ws:
            got.append(message)
        done.set()

    settings = Settings(deepgram_api_key="k")
    async with serve(collect, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with open_deepgram_socket(
            ProviderClients(settings),
            base=f"ws://127.0.0.1:{port}",
            path="/v1/listen",
            api_key="k",
            params=LISTEN,
            open_timeout_s=5,
        ) as ws:
            assert send_binary_now(ws, b"\x01" * 160)
            await ws.send('{"type":"KeepAlive"}')  # the SDK's sends interleave in order
            assert send_binary_now(ws, b"\x02" * 800)
            await ws.close()
            assert not send_binary_now(ws, b"\x03" * 160)  # closed: the caller must `send`
        await within(done.wait(), 5)
    assert got == [b"\x01" * 160, '{"type":"KeepAlive"}', b"\x02" * 800]
