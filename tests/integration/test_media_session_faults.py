"""A media session that fails ends its own socket with a code and a reason (1011 for an
internal failure, never an ASGI traceback), and a socket that never sends `start` is closed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, WebSocket
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from frontdesk.supervisor import free_port
from services.media.call_session import CallSession, MediaDeps
from services.media.live_calls import LiveCalls
from shared.bus.mux import StreamMux
from shared.bus.streams import CallLog, connect
from shared.contract import stream_token
from shared.runtime.settings import Settings
from sim.twilio_webhook import new_sid
from tests.conftest import Infra

SECRET = "session-secret"


def media_app(redis_url: str) -> FastAPI:
    """The media socket route over `redis_url` (the app builds its clients in its own loop)."""
    settings = Settings(stream_token_secret=SECRET, media_start_timeout_s=0.5)
    app = FastAPI()

    @app.websocket("/twilio/stream")
    async def stream(ws: WebSocket) -> None:
        deps = MediaDeps(
            settings=settings,
            log=CallLog(connect(redis_url, socket_timeout=1.0), 16),
            mux=StreamMux.from_url(redis_url),
            replica="test",
        )
        live = LiveCalls(deps.log, deps.replica, settings.media_heartbeat_ttl_s)
        await CallSession(ws, deps, live).run()

    return app


def start(call_sid: str) -> str:
    token = stream_token.issue(SECRET, call_sid, 60)
    return json.dumps(
        {
            "event": "start",
            "start": {
                "callSid": call_sid,
                "streamSid": new_sid("MZ"),
                "customParameters": {"token": token},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
    )


@pytest.fixture
def live(infra: Infra) -> Iterator[TestClient]:
    with TestClient(media_app(infra.redis_url)) as client:
        yield client


def close_of(client: TestClient, *frames: str) -> tuple[int, str]:
    with client.websocket_connect("/twilio/stream") as ws:
        for frame in frames:
            ws.send_text(frame)
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_text()
    return closed.value.code, closed.value.reason


def test_redis_gone_ends_the_session_with_1011_and_a_reason() -> None:
    with TestClient(media_app(f"redis://127.0.0.1:{free_port()}/0")) as dead:
        code, reason = close_of(dead, start(new_sid("CA")))
    assert (code, reason) == (1011, "internal error: ConnectionError")


def test_a_start_for_a_call_the_gateway_never_saw_is_refused(live: TestClient) -> None:
    assert close_of(live, start(new_sid("CA"))) == (1008, "unknown call")


def test_a_socket_without_start_is_closed(live: TestClient) -> None:
    connected = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    assert close_of(live, connected) == (1008, "no start within 0.5 s")


def test_stop_before_start_is_a_protocol_error(live: TestClient) -> None:
    assert close_of(live, json.dumps({"event": "stop"})) == (1008, "stop before start")
