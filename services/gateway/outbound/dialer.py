"""The outbound dialler: a loop in every gateway replica that places due calls.

Durable in Postgres: a request is due when `status` is queued / retry_scheduled and
`next_attempt_at` has passed. A replica leases due rows (`FOR UPDATE SKIP LOCKED`: no two
replicas dial the same attempt), marks them `dialing` with a lease, and dials. A lease that
runs out (no answer and no final status from Twilio; or the replica died mid-dial) counts as a
failed attempt, and a conversation that never reported its end is completed from what it
stored. `wake()` makes the loop look at once (a new request).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.gateway.outbound.outcome import finish, retry_or_finish
from services.gateway.outbound.twilio_calls import DialError, DialRequest, TwilioCalls
from shared.db.models import OutboundCallRequest
from shared.runtime.settings import Settings

log = logging.getLogger(__name__)


def callback_urls(settings: Settings, request_id: str) -> tuple[str, str, str]:
    """The voice, status and AMD URLs of a request (the request id rides in the query)."""
    base = settings.public_gateway_url.rstrip("/")
    query = f"?outbound={request_id}"
    return (
        f"{base}/twilio/voice{query}",
        f"{base}/twilio/outbound-status{query}",
        f"{base}/twilio/amd{query}",
    )


@dataclass
class Dialer:
    """Places due outbound calls until stopped."""

    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    calls: TwilioCalls
    batch: int = 10
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        """A request became due: look now."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Dial until `stop` is set; a failing round is logged and retried at the next poll."""
        while not stop.is_set():
            try:
                busy = await self.expire_stale() + await self.dial_due()
            except (OSError, DialError, SQLAlchemyError) as exc:
                log.warning("outbound dialler round failed: %s", exc)
                busy = 0
            if busy:
                continue
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(
                waiters, timeout=self.settings.outbound_poll_s, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waiters:
                waiter.cancel()

    async def dial_due(self) -> int:
        """Lease the due requests and dial each; how many were dialled."""
        lease = timedelta(seconds=self.settings.outbound_dial_lease_s)
        async with self.sessions() as session:
            rows = (
                await session.scalars(
                    select(OutboundCallRequest)
                    .where(
                        OutboundCallRequest.status.in_(("queued", "retry_scheduled")),
                        OutboundCallRequest.next_attempt_at <= func.now(),
                    )
                    .order_by(OutboundCallRequest.next_attempt_at)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            now = datetime.now(UTC)
            for row in rows:
                row.status = "dialing"
                row.attempts += 1
                row.next_attempt_at = now + lease
                row.last_call_status = None
            await session.commit()
        await asyncio.gather(*(self._dial(row.id) for row in rows))
        return len(rows)

    async def _dial(self, request_id: str) -> None:
        async with self.sessions() as session:
            row = await session.get(OutboundCallRequest, request_id)
            if row is None:
                return
            voice, status, amd = callback_urls(self.settings, row.id)
            request = DialRequest(
                to=row.to_number,
                from_=row.from_number,
                voice_url=voice,
                status_url=status,
                amd_url=amd,
                ring_timeout_s=self.settings.outbound_ring_timeout_s,
                time_limit_s=self.settings.outbound_max_call_s,
            )
        try:
            call_sid = await self.calls.dial(request)
        except DialError as exc:
            log.warning("outbound request %s: dial failed: %s", request_id, exc)
            await self._dial_failed(request_id, str(exc))
            return
        async with self.sessions() as session:
            row = await session.get(OutboundCallRequest, request_id, with_for_update=True)
            if row is not None and call_sid not in row.twilio_call_sids:
                row.twilio_call_sids = [*row.twilio_call_sids, call_sid]
                if row.last_call_status is None:
                    row.last_call_status = "queued"
            await session.commit()

    async def _dial_failed(self, request_id: str, error: str) -> None:
        async with self.sessions() as session:
            row = await session.get(OutboundCallRequest, request_id, with_for_update=True)
            if row is not None and row.status == "dialing":
                await retry_or_finish(session, row, "failed", datetime.now(UTC), error)
            await session.commit()

    async def expire_stale(self) -> int:
        """Requests whose lease ran out: a dial nobody heard back from is a failed attempt,
        a conversation with no final status is completed with what it stored."""
        async with self.sessions() as session:
            rows = (
                await session.scalars(
                    select(OutboundCallRequest)
                    .where(
                        OutboundCallRequest.status.in_(("dialing", "in_progress")),
                        OutboundCallRequest.next_attempt_at <= func.now(),
                    )
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            now = datetime.now(UTC)
            for row in rows:
                if row.status == "dialing":
                    await retry_or_finish(session, row, "failed", now, "no call status from Twilio")
                else:
                    await finish(
                        session,
                        row,
                        row.outcome or "failed",
                        {**(row.outcome_details or {}), "reason": "no completed status"},
                        now,
                    )
            await session.commit()
        return len(rows)
