"""Open a Deepgram streaming socket (listen or speak) for the SDK's typed socket client.

deepgram-sdk 7.17's `connect()` opens its socket with the legacy websockets client, which
always offers permessage-deflate and cannot be told otherwise. µ-law audio barely compresses,
yet deflate then runs on every 20 ms frame (and on every TTS chunk the server sends), and the
SDK re-reads its package metadata for the headers on each connect. We open the socket
ourselves (same URL, query and headers as the SDK builds) without compression and hand it to
the SDK's own `AsyncV1SocketClient`, which keeps parsing and sending the typed messages.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from deepgram.core.jsonable_encoder import jsonable_encoder
from deepgram.core.query_encoder import encode_query
from deepgram.core.remove_none_from_dict import remove_none_from_dict
from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State

from services.media.provider_clients import ProviderClients

MAX_MESSAGE_BYTES = 1 << 22
"""Largest message accepted from Deepgram (TTS audio chunks are far smaller)."""


def socket_url(base: str, path: str, params: Mapping[str, Any]) -> str:
    """`base` + `path` + the query exactly as the SDK encodes it (lists repeat the key,
    booleans are true/false, None is left out)."""
    query = encode_query(jsonable_encoder(remove_none_from_dict(dict(params))))
    url = base.rstrip("/") + path
    return f"{url}?{urllib.parse.urlencode(query)}" if query else url


@asynccontextmanager
async def open_deepgram_socket(
    clients: ProviderClients,
    *,
    base: str,
    path: str,
    api_key: str,
    params: Mapping[str, Any],
    open_timeout_s: float,
) -> AsyncIterator[ClientConnection]:
    """An uncompressed socket to Deepgram; raises websockets.InvalidStatus (401, 400 ...),
    OSError or TimeoutError when it cannot be opened."""
    url = socket_url(base, path, params)
    async with connect(
        url,
        additional_headers=clients.deepgram_headers(api_key),
        compression=None,
        ssl=clients.ssl_context() if url.startswith("wss://") else None,
        open_timeout=open_timeout_s,
        max_size=MAX_MESSAGE_BYTES,
        proxy=None,
    ) as ws:
        yield ws


def send_binary_now(ws: ClientConnection, data: bytes) -> bool:
    """Frame `data` and hand it to the transport at once, as `ws.send` does in the common
    case but without its per-message async context (caller audio is sent about 50 times a
    second per call). False, with nothing sent, unless the socket is open, idle and not
    backed up: then `await ws.send(data)`, which waits for the buffer or raises."""
    if (
        ws.protocol.state is not State.OPEN
        or ws.send_in_progress is not None
        or ws.paused
        or ws.transport.is_closing()
    ):
        return False
    ws.protocol.send_binary(data)
    ws.send_data()
    return True
