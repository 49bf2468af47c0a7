"""`python -m services.speech` as its own process, started the way `frontdesk up --speech local`
starts it, and media's environment pointing at it."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from frontdesk.supervisor import Ports, Stack, speech_env, start_speech


def test_the_supervisor_starts_the_speech_service_and_points_media_at_it(
    tmp_path: Path,
) -> None:
    ports = Ports.random()
    env = speech_env(ports)
    assert env["DEEPGRAM_STT_URL"] == f"ws://127.0.0.1:{ports.speech}"
    assert env["STT_PROVIDER"] == "local"
    stack = Stack(ports=ports, log_dir=tmp_path)
    try:
        start_speech(stack, os.environ | env | {"ALLOW_INSECURE_DEFAULTS": "true"}, 240)
        base = f"http://127.0.0.1:{ports.speech}"
        assert httpx.get(f"{base}/readyz", timeout=5).json()["status"] == "ready"
        assert "speech_listen_sessions 0.0" in httpx.get(f"{base}/metrics", timeout=5).text
    finally:
        stack.stop()
    assert stack.procs == {}
