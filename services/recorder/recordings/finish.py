"""After call.ended is stored: assemble the call's recording and note it on the call row."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.models import Call
from shared.recordings.store import RecordingStore


async def finish_recording(
    sessions: async_sessionmaker[AsyncSession], store: RecordingStore, call: Call
) -> Call:
    """Assemble the stored chunks of `call` into one WAV (idempotent) and store its key,
    duration and size on the call; returns the call as it now is."""
    if call.recording_key is not None or call.recording_purged_at is not None:
        return call
    finished = await store.finish(call.tenant_id, call.call_sid)
    if finished is None:
        return call
    async with sessions() as session:
        await session.execute(
            update(Call)
            .where(Call.call_sid == call.call_sid)
            .values(
                recording_key=finished.key,
                recording_duration_s=finished.duration_s,
                recording_bytes=finished.size,
            )
        )
        await session.commit()
    call.recording_key = finished.key
    call.recording_duration_s = finished.duration_s
    call.recording_bytes = finished.size
    return call


def recording_url(public_gateway_url: str, call: Call) -> str | None:
    """The absolute URL of the call's recording (tenant API key required), if it has one."""
    if call.recording_key is None:
        return None
    return f"{public_gateway_url.rstrip('/')}/v1/calls/{call.call_sid}/recording"
