"""Placing and hanging up calls with the twilio library's REST client (blocking HTTP, so each
request runs in a worker thread). `TWILIO_API_BASE_URL` points it at a simulator."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from shared.runtime.settings import Settings

STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


class DialError(Exception):
    """Twilio refused or could not be reached; the message says why."""


@dataclass(frozen=True)
class DialRequest:
    """One outbound call to place, with the gateway URLs Twilio calls back."""

    to: str
    from_: str
    voice_url: str
    status_url: str
    amd_url: str
    ring_timeout_s: int
    time_limit_s: int


class TwilioCalls:
    """The REST calls the outbound dialler makes."""

    def __init__(self, settings: Settings) -> None:
        self.client = Client(settings.twilio_account_sid, settings.twilio_auth_token)
        if settings.twilio_api_base_url:
            self.client.api.base_url = settings.twilio_api_base_url.rstrip("/")

    async def dial(self, request: DialRequest) -> str:
        """Place the call (async AMD, status callbacks); returns its CallSid."""
        return await asyncio.to_thread(self._dial, request)

    def _dial(self, r: DialRequest) -> str:
        try:
            call = self.client.calls.create(
                to=r.to,
                from_=r.from_,
                url=r.voice_url,
                method="POST",
                status_callback=r.status_url,
                status_callback_method="POST",
                status_callback_event=STATUS_EVENTS,
                machine_detection="DetectMessageEnd",
                async_amd="true",
                async_amd_status_callback=r.amd_url,
                async_amd_status_callback_method="POST",
                timeout=r.ring_timeout_s,
                time_limit=r.time_limit_s,
            )
        except (TwilioException, OSError) as exc:
            raise DialError(f"{type(exc).__name__}: {exc}"[:500]) from exc
        if not call.sid:
            raise DialError("Twilio returned a call without a sid")
        return str(call.sid)

    async def hang_up(self, call_sid: str) -> None:
        """End a live call (Status=completed)."""
        await asyncio.to_thread(self._hang_up, call_sid)

    def _hang_up(self, call_sid: str) -> None:
        try:
            self.client.calls(call_sid).update(status="completed")
        except (TwilioException, OSError) as exc:
            raise DialError(f"{type(exc).__name__}: {exc}"[:500]) from exc
