"""Start recording a stream when the call's tenant records calls (small hook for the session)."""

from __future__ import annotations

from services.media.call_context import MediaDeps
from services.media.recording.writer import StreamRecording
from services.media.twilio.link import TwilioLink
from shared.contract import events as ev


def start_recording(
    link: TwilioLink, deps: MediaDeps, started: ev.CallStarted, stream_started_at: float
) -> StreamRecording | None:
    """Tap `link` into the call's recording; None when this call is not recorded."""
    if deps.recordings is None or not started.recording:
        return None
    recording = StreamRecording(
        deps.recordings,
        started.tenant_id,
        started.call_sid,
        call_started_at=started.at,
        stream_started_at=stream_started_at,
        chunk_s=deps.settings.recording_chunk_s,
        jitter_ms=deps.settings.recording_jitter_ms,
    )
    link.tap = recording
    recording.start()
    return recording
