"""How post-call webhooks are signed (docs/webhooks.md shows the receiver's side)."""

from __future__ import annotations

import hashlib
import hmac

EVENT_ID_HEADER = "X-FrontDesk-Event-Id"
TIMESTAMP_HEADER = "X-FrontDesk-Timestamp"
SIGNATURE_HEADER = "X-FrontDesk-Signature"
SIGNATURE_VERSION = "v1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`."""
    message = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def signed_headers(secret: str, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Headers of one delivery attempt."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "FrontDesk-Webhooks/1",
        EVENT_ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def event_id_for(call_sid: str, event_type: str) -> str:
    """The stable id of a call's event: the same however often it is produced or delivered."""
    return "evt_" + hashlib.sha256(f"{call_sid}:{event_type}".encode()).hexdigest()[:32]
