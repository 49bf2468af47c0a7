"""Helpers of the recording tests: the platform's recordings store, a call's finished
recording fetched through the API, and "is there sound here" on a decoded channel."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
from obstore.store import LocalStore

from shared.db.engine import make_engine, make_sessions
from shared.db.models import Call
from shared.recordings import wav
from shared.recordings.store import RecordingStore
from tests.conftest import Platform
from tests.e2e.test_calls_api import _keys as tenant_keys

__all__ = ["fetch_recording", "has_sound", "platform_store", "tenant_keys", "wait_for_recording"]

LOUD = 500
"""A window with a sample louder than this has sound (µ-law silence decodes to 0)."""


def platform_store(platform: Platform) -> RecordingStore:
    return RecordingStore(LocalStore(Path(platform.env["RECORDINGS_DIR"]), mkdir=True))


def window(channel: npt.NDArray[np.int16], from_s: float, to_s: float) -> npt.NDArray[np.int16]:
    return channel[max(0, int(from_s * wav.RATE)) : max(0, int(to_s * wav.RATE))]


def has_sound(channel: npt.NDArray[np.int16], from_s: float, to_s: float) -> bool:
    part = window(channel, from_s, to_s)
    return bool(part.size and np.abs(part.astype(np.int32)).max() > LOUD)


async def wait_for_recording(platform: Platform, call_sid: str, timeout_s: float = 60) -> Call:
    """Poll Postgres (bounded) until the recorder has stored the call's recording."""
    engine = make_engine(platform.infra.database_url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            async with make_sessions(engine)() as session:
                call = await session.get(Call, call_sid)
            if call is not None and call.recording_key is not None:
                return call
            assert time.monotonic() < deadline, f"no recording stored for {call_sid}"
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()


async def fetch_recording(platform: Platform, key: str, call_sid: str) -> wav.Parsed:
    """The call's recording through `GET /v1/calls/{sid}/recording`, parsed."""
    async with httpx.AsyncClient(
        base_url=platform.gateway, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as api:
        response = await api.get(f"/v1/calls/{call_sid}/recording")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    return wav.parse(response.content)
