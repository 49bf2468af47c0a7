"""Short-lived HMAC tokens that bind a Media Stream to one CallSid."""

from __future__ import annotations

import hashlib
import hmac
import time


class InvalidStreamToken(ValueError):
    """The stream token is missing, malformed, expired or for another call."""


def _sign(secret: str, call_sid: str, expires: int) -> str:
    msg = f"{call_sid}:{expires}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def issue(secret: str, call_sid: str, ttl_s: int, now: float | None = None) -> str:
    """A token for `call_sid` valid for `ttl_s` seconds."""
    expires = int((now if now is not None else time.time()) + ttl_s)
    return f"{expires}.{_sign(secret, call_sid, expires)}"


def verify(secret: str, call_sid: str, token: str | None, now: float | None = None) -> None:
    """Raise InvalidStreamToken unless `token` was issued for `call_sid` and is unexpired."""
    if not token or "." not in token:
        raise InvalidStreamToken("missing or malformed stream token")
    expires_s, sig = token.split(".", 1)
    if not (expires_s.isascii() and expires_s.isdigit()) or len(expires_s) > 20:
        raise InvalidStreamToken("malformed stream token")
    expires = int(expires_s)
    if not hmac.compare_digest(sig.encode(), _sign(secret, call_sid, expires).encode()):
        raise InvalidStreamToken("stream token does not match this call")
    if (now if now is not None else time.time()) > expires:
        raise InvalidStreamToken("stream token expired")
