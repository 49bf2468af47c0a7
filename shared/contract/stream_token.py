"""Short-lived HMAC tokens that bind a Media Stream to one CallSid.

A token is ``<expires>.<issued_ms>.<token_id>.<hmac>``: the HMAC (SHA-256, hex) covers the
CallSid, both times and the random token id. Media makes a token single-use by claiming its
id in Redis on the first ``start``; ``issued_ms`` orders the tokens of one call, so a token
minted after a stream began (the gateway's after-stream reconnect) may take that stream's
place when its replica died (services/media/twilio/stream_guard.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

TOKEN_ID_HEX = 16
"""Hex digits of the random token id (64 bits)."""


class InvalidStreamToken(ValueError):
    """The stream token is missing, malformed, expired or for another call."""


@dataclass(frozen=True)
class StreamToken:
    """A verified token: its id (single use), when it was minted and when it expires."""

    token_id: str
    issued_ms: int
    expires: int


def _sign(secret: str, call_sid: str, expires: int, issued_ms: int, token_id: str) -> str:
    msg = f"{call_sid}:{expires}:{issued_ms}:{token_id}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def issue(secret: str, call_sid: str, ttl_s: int, now: float | None = None) -> str:
    """A fresh single-use token for `call_sid`, valid for `ttl_s` seconds."""
    at = now if now is not None else time.time()
    expires, issued_ms = int(at + ttl_s), int(at * 1000)
    token_id = secrets.token_hex(TOKEN_ID_HEX // 2)
    return (
        f"{expires}.{issued_ms}.{token_id}.{_sign(secret, call_sid, expires, issued_ms, token_id)}"
    )


def _number(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise InvalidStreamToken("malformed stream token")
    return int(text)


def verify(secret: str, call_sid: str, token: str | None, now: float | None = None) -> StreamToken:
    """The token's claims; raises InvalidStreamToken unless `token` was issued for `call_sid`
    and is unexpired."""
    if not token or "." not in token:
        raise InvalidStreamToken("missing or malformed stream token")
    parts = token.split(".")
    if len(parts) != 4:
        raise InvalidStreamToken("malformed stream token")
    expires_s, issued_s, token_id, sig = parts
    expires, issued_ms = _number(expires_s), _number(issued_s)
    if len(token_id) != TOKEN_ID_HEX or not all(c in "0123456789abcdef" for c in token_id):
        raise InvalidStreamToken("malformed stream token")
    expected = _sign(secret, call_sid, expires, issued_ms, token_id)
    if not hmac.compare_digest(sig.encode(), expected.encode()):
        raise InvalidStreamToken("stream token does not match this call")
    if (now if now is not None else time.time()) > expires:
        raise InvalidStreamToken("stream token expired")
    return StreamToken(token_id=token_id, issued_ms=issued_ms, expires=expires)
