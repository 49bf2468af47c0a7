"""A minimal Deepgram Aura `/v1/speak` client for the simulators: text in, µ-law 8 kHz out.

The speaking caller uses it against the platform's self-hosted speech service (or any
Aura-compatible server), so its lines carry real words. Results are cached per process: a
bench or a test suite says the same lines many times.
"""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect

SPEAK_PATH = "/v1/speak?encoding=mulaw&sample_rate=8000"

_cache: dict[tuple[str, str], bytes] = {}
_locks: dict[tuple[str, str], asyncio.Lock] = {}


class AuraError(RuntimeError):
    """The TTS server refused or broke the exchange."""


async def synthesize(
    tts_url: str, text: str, api_key: str | None = None, timeout_s: float = 60.0
) -> bytes:
    """µ-law 8 kHz audio of `text` from the Aura-compatible server at `tts_url` (ws://...),
    with `Authorization: Token <api_key>` when a key is given."""
    key = (tts_url, text)
    lock = _locks.setdefault(key, asyncio.Lock())
    async with lock:
        if key not in _cache:
            _cache[key] = await _speak_once(tts_url, text, api_key, timeout_s)
        return _cache[key]


async def _speak_once(tts_url: str, text: str, api_key: str | None, timeout_s: float) -> bytes:
    audio = bytearray()
    headers = {"Authorization": f"Token {api_key}"} if api_key else {}
    url = tts_url.rstrip("/") + SPEAK_PATH
    async with asyncio.timeout(timeout_s):
        async with connect(url, max_size=None, additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "Speak", "text": text}))
            await ws.send(json.dumps({"type": "Flush"}))
            async for message in ws:
                if isinstance(message, bytes):
                    audio.extend(message)
                    continue
                kind = json.loads(message).get("type")
                if kind == "Flushed":
                    await ws.send(json.dumps({"type": "Close"}))
                    break
                if kind == "Warning":
                    raise AuraError(f"TTS warning for {text!r}: {message}")
    if not audio:
        raise AuraError(f"TTS at {tts_url} returned no audio for {text!r}")
    return bytes(audio)
