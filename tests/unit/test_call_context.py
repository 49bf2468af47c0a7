"""Per-call context of the media service: the bounded window of caller frame arrivals."""

from __future__ import annotations

from services.media.call_context import FRAME_TIMES_KEPT, CallContext, MediaDeps
from shared.contract import events as ev
from shared.runtime.settings import Settings


def test_frame_arrival_window_is_bounded_and_maps_audio_time() -> None:
    deps = MediaDeps(settings=Settings(), log=None, mux=None, replica="r")  # type: ignore[arg-type]
    ctx = CallContext(
        deps=deps,
        call_sid="CA1",
        stream_sid="MZ1",
        started=ev.CallStarted(call_sid="CA1", from_number="+1", to_number="+2"),
        start_received_at=0.0,
    )
    for n in range(3 * FRAME_TIMES_KEPT):
        ctx.frame_arrived(1000.0 + n * 0.02)
    assert len(ctx.frame_times) == FRAME_TIMES_KEPT
    last_ms = (3 * FRAME_TIMES_KEPT - 1) * 20
    assert abs(ctx.wall_at(last_ms) - (1000.0 + last_ms / 1000)) < 1e-6
    assert abs(ctx.wall_at(100) - 1000.1) < 1e-6  # before the window: extrapolated
