"""The console's session cookie: a signed, expiring token naming who signed in (pure).

`<payload>.<HMAC-SHA256>`, both base64url; the payload is JSON `{"k": api key id or "",
"t": tenant id or "", "op": operator?, "c": CSRF token, "e": expiry}`. The cookie never holds
an API key: each request checks that the key id is still unrevoked (`viewer.py`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

COOKIE = "fd_console"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
MAX_COOKIE_CHARS = 1024


@dataclass(frozen=True)
class SessionData:
    """Who is signed in: one tenant (through one of its API keys) or the operator."""

    key_id: str
    tenant_id: str
    operator: bool
    csrf: str
    expires: float


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def secret_from(session_secret: str, stream_token_secret: str) -> bytes:
    """The signing key: the configured one, else one derived from the stream-token secret
    (so every gateway replica signs alike without another secret to set)."""
    if session_secret:
        return session_secret.encode()
    return hmac.new(stream_token_secret.encode(), b"frontdesk-console-session", "sha256").digest()


def new_session(key_id: str, tenant_id: str, operator: bool, ttl_s: float) -> SessionData:
    """A fresh session with its own CSRF token."""
    expires = float(int(time.time() + ttl_s))
    return SessionData(key_id, tenant_id, operator, secrets.token_urlsafe(24), expires)


def sign(data: SessionData, secret: bytes) -> str:
    """The cookie value for a session."""
    payload = json.dumps(
        {
            "k": data.key_id,
            "t": data.tenant_id,
            "op": data.operator,
            "c": data.csrf,
            "e": int(data.expires),
        },
        separators=(",", ":"),
    ).encode()
    body = _b64(payload)
    mac = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(cookie: str | None, secret: bytes, now: float | None = None) -> SessionData | None:
    """The session in a cookie, or None when it is missing, malformed, forged or expired."""
    if not cookie or len(cookie) > MAX_COOKIE_CHARS or cookie.count(".") != 1:
        return None
    body, mac = cookie.split(".")
    expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        fields = json.loads(_unb64(body))
        data = SessionData(
            str(fields["k"]),
            str(fields["t"]),
            bool(fields["op"]),
            str(fields["c"]),
            float(fields["e"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    if data.expires <= (time.time() if now is None else now):
        return None
    return data
