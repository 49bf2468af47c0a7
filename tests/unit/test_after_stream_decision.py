"""After-stream decides from the stream's own end entry, not from the first new entry; the
reaper's verdict for calls nobody ended (issue 13)."""

from __future__ import annotations

from services.gateway.after_stream import decide, settled
from services.recorder.reaper import ReaperBounds, verdict
from shared.contract import events as ev

SID = "CA" + "1" * 32


def log_of(*events: ev.Event) -> list[tuple[str, ev.Event]]:
    return [(f"{i + 1}-0", e) for i, e in enumerate(events)]


STARTED = ev.CallStarted(call_sid=SID, from_number="+1", to_number="+2")


def stream(sid: str = "MZ1", replica: str = "media-a") -> ev.StreamStarted:
    return ev.StreamStarted(call_sid=SID, stream_sid=sid, replica=replica)


def ended(reason: str = "caller-hangup") -> ev.CallEnded:
    return ev.CallEnded(call_sid=SID, reason=reason, duration_s=1.0)


def stream_end(handover: bool = False, sid: str = "MZ1") -> ev.StreamEnded:
    reason = "handover" if handover else "caller-hangup"
    return ev.StreamEnded(
        call_sid=SID, stream_sid=sid, replica="media-a", reason=reason, handover=handover
    )


USAGE = ev.Usage(call_sid=SID, provider="deepgram", metric="stt_seconds", quantity=3.0)


def test_usage_written_before_call_ended_is_not_the_end_of_the_stream() -> None:
    entries = log_of(STARTED, stream(), USAGE)
    assert not settled(entries)  # the old check woke here and resumed a finished call
    entries = log_of(STARTED, stream(), USAGE, ended(), stream_end())
    assert settled(entries) and decide(entries).action == "hangup"


def test_a_handed_over_stream_resumes_and_so_does_a_dead_replica() -> None:
    moved = log_of(STARTED, stream(), USAGE, stream_end(handover=True))
    assert settled(moved) and decide(moved).action == "reconnect"
    died = log_of(STARTED, stream(), USAGE)
    assert decide(died).action == "reconnect"  # once the live key is gone


def test_decisions_follow_the_last_stream_across_replicas() -> None:
    resumed_then_ended = log_of(
        STARTED,
        stream("MZ1", "media-a"),
        stream_end(True, "MZ1"),
        stream("MZ2", "media-b"),
        ended(),
        stream_end(sid="MZ2"),
    )
    assert decide(resumed_then_ended).action == "hangup"
    resumed_again = log_of(
        STARTED, stream("MZ1"), stream_end(True, "MZ1"), stream("MZ2", "media-b"), USAGE
    )
    assert not settled(resumed_again) and decide(resumed_again).action == "reconnect"


def test_no_stream_ever_hangs_up() -> None:
    entries = log_of(STARTED)
    assert settled(entries) and decide(entries).action == "hangup"


BOUNDS = ReaperBounds(no_stream_s=5, media_lost_s=10, poll_s=1)


def test_reaper_verdicts() -> None:
    assert verdict(log_of(STARTED), 4.9, BOUNDS) is None
    assert verdict(log_of(STARTED), 5.0, BOUNDS) == "no-stream"
    lost = log_of(STARTED, stream(), USAGE)
    assert verdict(lost, 9.9, BOUNDS) is None
    assert verdict(lost, 10.0, BOUNDS) == "media-lost"
    assert verdict(log_of(STARTED, stream(), ended()), 100.0, BOUNDS) is None
    moved_nowhere = log_of(STARTED, stream(), stream_end(handover=True))
    assert verdict(moved_nowhere, 10.0, BOUNDS) == "media-lost"


def test_a_failed_media_session_is_not_a_caller_hangup() -> None:
    # media's own failure ends the call "media-error: <exception>": the caller is transferred
    # (or hears an apology), not hung up on as if they had hung up themselves
    transfer = STARTED.model_copy(update={"transfer_number": "+443"})
    failed = log_of(transfer, stream(), ended(f"{ev.MEDIA_ERROR}: RuntimeError"), stream_end())
    assert decide(failed).action == "transfer" and decide(failed).target == "+443"
    alone = log_of(STARTED, stream(), ended(f"{ev.MEDIA_ERROR}: RuntimeError"), stream_end())
    assert decide(alone).action == "apologize"
