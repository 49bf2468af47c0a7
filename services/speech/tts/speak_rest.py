"""`POST /v1/speak`: Aura's REST synthesis (media's fallback when the socket dies), by Piper.

Query: `model`, `encoding` (mulaw|linear16), `sample_rate`, `container` (none; wav is
refused: media asks for raw audio). Body: `{"text": "..."}`, bounded before parsing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from services.speech.stt.listen_socket import authorized, listen_key
from services.speech.tts import aura_protocol as aura
from services.speech.tts.piper_engine import INSTALL_COMMAND, SpeechModelMissing
from services.speech.tts.rendering import load_engine, render_pool, rendered_audio
from shared.runtime.settings import Settings

MAX_BODY_BYTES = 16 * 1024
CONTENT_TYPES = {"mulaw": "audio/basic", "linear16": "audio/l16"}


def _error(status: int, message: str, request_id: str) -> JSONResponse:
    body = {"err_code": aura.error_code(status), "err_msg": message, "request_id": request_id}
    return JSONResponse(body, status, headers={"dg-error": message, "dg-request-id": request_id})


async def _bounded_body(request: Request) -> bytes | None:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


def _text_of(body: bytes) -> str:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise aura.ProtocolError(400, "body must be JSON") from None
    text = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise aura.ProtocolError(400, "body must be JSON with a non-empty 'text' string")
    if len(text) > aura.MAX_SPEAK_CHARS:
        raise aura.ProtocolError(413, f"text over {aura.MAX_SPEAK_CHARS} characters")
    return text


async def speak_rest(request: Request, settings: Settings) -> Response:
    """Synthesise one request's text; audio streams back phrase by phrase."""
    request_id = str(uuid.uuid4())
    try:
        if not authorized(request.headers, listen_key(settings)):
            raise aura.ProtocolError(401, "Invalid credentials.")
        fmt = aura.parse_query(request.query_params, default_model="piper")
        if (request.query_params.get("container") or "none") != "none":
            raise aura.ProtocolError(400, "only container=none is served")
        body = await _bounded_body(request)
        if body is None:
            raise aura.ProtocolError(413, f"body over {MAX_BODY_BYTES} bytes")
        text = _text_of(body)
    except aura.ProtocolError as exc:
        return _error(exc.code, exc.reason, request_id)
    try:
        engine = await load_engine(settings)
    except SpeechModelMissing:
        return _error(503, f"speech model missing: run `{INSTALL_COMMAND}`", request_id)
    pool = render_pool(settings)

    async def audio() -> AsyncIterator[bytes]:
        async for chunk in rendered_audio(engine, pool, text, fmt):
            yield chunk

    headers = {
        "dg-request-id": request_id,
        "dg-model-name": engine.name,
        "dg-model-uuid": aura.model_uuid(engine.name),
        "dg-char-count": str(len(text)),
    }
    return StreamingResponse(audio(), media_type=CONTENT_TYPES[fmt.encoding], headers=headers)
