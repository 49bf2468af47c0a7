"""Refuse to start with a secret anyone could know: empty, a shipped default, or too short.

`frontdesk up`, the demo and the test platform set ALLOW_INSECURE_DEFAULTS (they run on
127.0.0.1 with simulators); any other start must configure real secrets first.
"""

from __future__ import annotations

from shared.runtime.settings import Settings

KNOWN_DEFAULTS = frozenset({"sim-auth-token", "dev-stream-secret", "test-auth-token", "changeme"})
"""Values shipped in this repository (settings defaults, docs, the test platform)."""
MIN_SECRET_CHARS = 16
REQUIRED = ("twilio_auth_token", "stream_token_secret")
"""Secrets every service needs: Twilio's webhook signing key, the stream-token HMAC key."""
OPTIONAL = ("operator_api_key", "console_session_secret")
"""Secrets that may be empty (the feature is then off) but, when set, must be strong."""


def _weakness(value: str, *, required: bool) -> str | None:
    if not value:
        return "is empty" if required else None
    if value in KNOWN_DEFAULTS:
        return "is a published default"
    if len(value) < MIN_SECRET_CHARS:
        return f"is shorter than {MIN_SECRET_CHARS} characters"
    return None


def weak_secrets(settings: Settings) -> list[str]:
    """One line per weak secret, naming its setting (env var). Pure."""
    problems: list[str] = []
    for name, required in [(n, True) for n in REQUIRED] + [(n, False) for n in OPTIONAL]:
        weakness = _weakness(str(getattr(settings, name)), required=required)
        if weakness is not None:
            problems.append(f"{name.upper()} {weakness}")
    return problems


def refuse_weak_secrets(settings: Settings, service: str) -> None:
    """Exit with a message naming each weak setting, unless ALLOW_INSECURE_DEFAULTS is set."""
    if settings.allow_insecure_defaults:
        return
    problems = weak_secrets(settings)
    if problems:
        raise SystemExit(
            f"{service}: refusing to start with insecure secrets: {'; '.join(problems)}. "
            "Set them (or ALLOW_INSECURE_DEFAULTS=true for a local demo only)."
        )
