"""Speech service app: `/v1/listen` (STT), `/v1/speak` (TTS), `/healthz` `/readyz` `/metrics`.

The Whisper model and the Silero VAD are loaded once at startup (off the event loop); a
missing model stops the process with one error naming the install command. The service keeps
no state between sockets and needs neither Redis nor Postgres, so it scales on its own.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response, WebSocket

from services.speech.stt.listen_socket import ListenDeps, serve_listen
from services.speech.stt.recognizer import Recognizer
from services.speech.tts.rendering import load_engine as load_tts_engine
from services.speech.tts.speak_rest import speak_rest
from services.speech.tts.speak_socket import serve_speak
from shared.observability.asgi import MetricsMiddleware
from shared.observability.health import Readiness
from shared.observability.metrics import Metrics
from shared.observability.ops_routes import mount_ops
from shared.runtime.settings import Settings
from shared.speech.vad import load_vad_model


def create_app(settings: Settings) -> FastAPI:
    """The speech service's ASGI app."""
    replica = settings.replica_name or f"{socket.gethostname()}-{os.getpid()}"
    metrics = Metrics("speech", process=True)
    readiness = Readiness(None, None, metrics)  # no Redis, no Postgres: ready once loaded

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        recognizer = await asyncio.to_thread(Recognizer.load, settings, metrics)
        app.state.listen = ListenDeps(settings, recognizer, load_vad_model(), metrics)
        await load_tts_engine(settings)  # Piper: loaded once, before /healthz answers
        yield
        readiness.drain()
        recognizer.close()

    app = FastAPI(title="FrontDesk speech", lifespan=lifespan)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    mount_ops(app, metrics, readiness, replica)

    @app.websocket("/v1/listen")
    async def listen(ws: WebSocket) -> None:
        await serve_listen(ws, app.state.listen)

    # Synthesis takes the same key as recognition (media sends its Deepgram key to both);
    # serve_speak and speak_rest check it.
    @app.websocket("/v1/speak")
    async def speak(ws: WebSocket) -> None:
        await serve_speak(ws, settings)

    @app.post("/v1/speak")
    async def speak_once(request: Request) -> Response:
        return await speak_rest(request, settings)

    return app
