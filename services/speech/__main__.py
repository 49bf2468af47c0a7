"""`python -m services.speech`: run a speech replica with uvicorn.

It needs no Redis or Postgres, only the models (`uv sync --extra speech`, what `make setup`
runs). SIGTERM stops it; open sockets close and media reconnects to another replica.
"""

from __future__ import annotations

import uvicorn

from services.speech.app import create_app
from services.speech.stt.listen_socket import listen_key
from services.speech.stt.recognizer import SpeechModelMissing, model_path
from services.speech.tts.piper_engine import SpeechModelMissing as VoiceMissing
from services.speech.tts.piper_engine import voice_files
from shared.runtime.logs import setup_logging
from shared.runtime.process import level_for
from shared.runtime.secrets_guard import KNOWN_DEFAULTS, MIN_SECRET_CHARS
from shared.runtime.settings import Settings, get_settings
from shared.runtime.telemetry import setup_tracing


def refuse_weak_key(settings: Settings) -> None:
    """The key guarding /v1/listen must be a real secret (unless ALLOW_INSECURE_DEFAULTS)."""
    key = listen_key(settings)
    weak = len(key) < MIN_SECRET_CHARS or key in KNOWN_DEFAULTS
    if weak and not settings.allow_insecure_defaults:
        raise SystemExit(
            "speech: refusing to start: the key guarding /v1/listen (SPEECH_API_KEY, else "
            f"DEEPGRAM_API_KEY) is shorter than {MIN_SECRET_CHARS} characters or a published "
            "default. Set it (or ALLOW_INSECURE_DEFAULTS=true for a local demo only)."
        )


def main() -> None:
    settings = get_settings()
    setup_logging("speech", level_for("speech", settings), settings.log_json)
    setup_tracing(
        "speech",
        console=settings.otel_console,
        file=settings.otel_file.format(service="speech") if settings.otel_file else None,
        otlp_endpoint=settings.otel_exporter_otlp_endpoint,
        otlp_batch_delay_ms=settings.otel_batch_delay_ms,
    )
    refuse_weak_key(settings)
    try:
        model_path(settings)  # fail before binding the port, with the install command
        voice_files()
    except (SpeechModelMissing, VoiceMissing) as exc:
        raise SystemExit(f"speech: {exc}") from None
    config = uvicorn.Config(
        create_app(settings),
        host=settings.speech_host,
        port=settings.speech_port,
        log_level="warning",
        ws_max_size=settings.speech_ws_max_bytes,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
