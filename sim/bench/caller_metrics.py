"""Measurements as the caller (the Twilio simulator) experienced the calls."""

from __future__ import annotations

from sim.bench.caller import BenchCall, BenchLine
from sim.twilio_call_model import CallEvent

FRAME_BYTES = 160


def _audio_starts(events: list[CallEvent]) -> list[float]:
    return [e.t_ms for e in events if e.kind == "agent-audio-start"]


def greeting_heard_ms(calls: list[BenchCall]) -> list[float]:
    """Stream start (Twilio's `start`) -> first greeting audio frame received."""
    out: list[float] = []
    for call in calls:
        starts = _audio_starts(call.result.events)
        if call.stream_offset_ms is not None and starts:
            out.append(starts[0] - call.stream_offset_ms)
    return out


def voice_to_voice_ms(calls: list[BenchCall], lines: list[BenchLine]) -> list[float]:
    """Per normal caller line: end of the caller's speech -> first agent audio received.
    Barge-in lines are left out (the agent may still be talking when they end)."""
    out: list[float] = []
    for call in calls:
        if call.stream_offset_ms is None:
            continue
        says = [e for e in call.result.events if e.kind == "say"]
        starts = _audio_starts(call.result.events)
        for line, say in zip(lines, says, strict=False):
            if line.barge_in:
                continue
            end_t = call.stream_offset_ms + float(say.data["end_ms"])
            heard = next((t for t in starts if t >= end_t), None)
            if heard is not None:
                out.append(heard - end_t)
    return out


def barge_heard_ms(calls: list[BenchCall]) -> list[float]:
    """Caller's first speech frame of a barge-in line -> Twilio receives `clear`.
    The STT simulator announces speech once the audio *before* the onset has arrived, so this
    can be up to one frame (20 ms) below what a real detector allows."""
    out: list[float] = []
    for call in calls:
        clears = [e.t_ms for e in call.result.events if e.kind == "clear"]
        says = [e for e in call.result.events if e.kind == "say"]
        for barge_t, _playing in call.barge_lines:
            say = next((s for s in says if s.t_ms >= barge_t), None)
            if say is None or call.stream_offset_ms is None:
                continue
            onset = call.stream_offset_ms + float(say.data["start_ms"])
            clear = next((t for t in clears if t >= say.t_ms), None)
            if clear is not None:
                out.append(clear - onset)
    return out


def barges_over_agent(calls: list[BenchCall]) -> tuple[int, int]:
    """(barge-in lines spoken, of which while agent audio was still playing)."""
    spoken = sum(len(c.barge_lines) for c in calls)
    playing = sum(1 for c in calls for _, p in c.barge_lines if p)
    return spoken, playing


def call_minutes(calls: list[BenchCall]) -> float:
    """Sum of the calls' stream durations, in minutes."""
    total_ms = sum(
        c.ended_t_ms - c.stream_offset_ms for c in calls if c.stream_offset_ms is not None
    )
    return total_ms / 60000


def inbound_dropped_frames(calls: list[BenchCall], stt_bytes: dict[str, int]) -> int:
    """Caller frames that never reached the STT socket (bytes per call tag from the STT sim)."""
    dropped = 0
    for call in calls:
        sent = call.result.frames_sent * FRAME_BYTES
        got = stt_bytes.get(call.result.call_sid, 0)
        dropped += max(0, sent - got) // FRAME_BYTES
    return dropped
