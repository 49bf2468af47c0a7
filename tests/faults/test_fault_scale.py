"""Issue 13's faults at their stated scale, on the two-replica fault platform (`make faults`):
a ~1 s Redis restart during 20 live calls, and a SIGTERM (drain) of the busier media replica
during 20 live calls. Asserted in Redis (the call log) and Postgres (the record); the caller's
silence, the calls served and the outage are printed as FIGURE lines."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable

import httpx
from sqlalchemy import select

from shared.bus.streams import CallLog, connect
from shared.contract import events as ev
from shared.db.engine import make_engine, make_sessions
from shared.db.models import Turn
from sim.twilio_caller import CallResult
from tests.e2e.test_call_end_to_end import wait_for_record
from tests.faults.conftest import FaultStack, booking_policy
from tests.faults.test_fault_scenarios import (
    BOOKED,
    BYE,
    HUNG_MS,
    assert_recorded_once,
    slot,
    start_call,
)

CALLS = 20
LINES = [
    "How much is a haircut?",
    "And how much is a beard trim?",
    "What does a shave cost?",
    BYE,
]
"""Four lines: long enough that every call is still live when the fault hits."""
DOWN_S = 1.0
"""How long Redis stays down (the outage under test, not a wait for a condition)."""
REPROMPT = "Are you still there?"
CALL_BOUND_S = 150.0

Entries = list[tuple[str, ev.Event]]
Call = tuple[str, "asyncio.Task[CallResult]"]
CALLER_SAW = {
    "say",
    "close",
    "after-stream-twiml",
    "resume",
    "connect-action",
    "stop",
    "error",
    "closed-before-stop",
    "server-hung-up-during-script",
    "no-stream",
}
"""The caller's events a failure report shows (not every frame and mark)."""
QUIET = (ev.SegmentSent, ev.SegmentPlayed, ev.TranscriptInterim, ev.LatencyMark)
"""Log entries a failure report leaves out."""


async def until_every_call(
    fault: FaultStack, calls: list[Call], ready: Callable[[Entries], bool], what: str
) -> dict[str, Entries]:
    """Poll every call's log with one client (bounded) until `ready` holds for each of them;
    a call that ends first fails at once, with what it saw."""
    client = connect(fault.redis.url)
    log = CallLog(client, 16)
    seen: dict[str, Entries] = {}
    deadline = time.monotonic() + 90
    try:
        while True:
            for sid, call in calls:
                if sid not in seen:
                    entries = await log.entries(sid)
                    if ready(entries):
                        seen[sid] = entries
                    elif call.done():
                        details = await describe(fault, call.result())
                        raise AssertionError(f"{sid} ended before {what}:\n{details}")
            if len(seen) == len(calls):
                return seen
            missing = sorted({sid for sid, _ in calls} - set(seen))
            assert time.monotonic() < deadline, f"{what}: not for {missing}"
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


def has(kind: type[ev.Event]) -> Callable[[Entries], bool]:
    return lambda entries: any(isinstance(e, kind) for _, e in entries)


def silences(result: CallResult) -> list[float]:
    """Caller-side ms from the end of each caller line to the next agent audio frame (lines
    the agent answered before the caller hung up)."""
    starts = [e.t_ms for e in result.events_of("agent-audio-start")]
    out = []
    for line in result.lines:
        after = [t for t in starts if t > line.end_ms]
        if after:
            out.append(after[0] - line.end_ms)
    return out


async def turns_of(fault: FaultStack, sid: str) -> list[Turn]:
    engine = make_engine(fault.database_url)
    try:
        async with make_sessions(engine)() as session:
            return list(
                await session.scalars(
                    select(Turn).where(Turn.call_sid == sid).order_by(Turn.turn_id)
                )
            )
    finally:
        await engine.dispose()


async def assert_complete(fault: FaultStack, result: CallResult) -> Entries:
    """The call went on to its end: the whole script spoken, hung up by the caller, recorded
    completely once (every log entry one row, every caller line stored), every caller turn
    answered, `call.ended` once. Returns the call's log."""
    sid = result.call_sid
    assert result.error is None, f"{sid}: {result.error}"
    assert [line.text for line in result.lines] == LINES, sid
    assert result.hangup_by == "caller", f"{sid} was hung up by the platform"
    record = await wait_for_record(fault.database_url, sid, 60)
    assert record.end_reason == "caller-hangup", (sid, record.end_reason)
    await assert_recorded_once(fault, sid, record, LINES)
    caller_turns = [t for t in await turns_of(fault, sid) if t.caller_text]
    assert [t.caller_text for t in caller_turns] == LINES, sid
    unanswered = [t.turn_id for t in caller_turns if not t.agent_text]
    assert not unanswered, f"{sid}: turns {unanswered} never answered"
    client = connect(fault.redis.url)
    try:
        entries = await CallLog(client, 16).entries(sid)
    finally:
        await client.aclose()
    ended = [e.reason for _, e in entries if isinstance(e, ev.CallEnded)]
    assert ended == ["caller-hangup"], (sid, ended)
    return entries


async def all_complete(fault: FaultStack, results: list[CallResult]) -> dict[str, Entries]:
    """`assert_complete` for every call; a failure names every failed call with what the
    caller saw (closes, after-stream answers) and the call's log, in order, and which of them
    had a turn answered twice (the brain re-running a turn after a Redis blip: fixed by the
    brain waiting out the blip for its call-log writes, `APPEND_PATIENCE_S`)."""
    logs: dict[str, Entries] = {}
    failed: list[str] = []
    twice: list[str] = []
    for result in results:
        try:
            logs[result.call_sid] = await assert_complete(fault, result)
        except AssertionError as exc:
            failed.append(f"{exc}\n{await describe(fault, result)}")
            if answered_twice(await log_entries(fault, result.call_sid)):
                twice.append(result.call_sid)
    summary = f"{len(failed)} of {len(results)} calls failed:\n" + "\n".join(failed)
    if twice:
        summary += f"\ncalls with a turn answered twice: {twice}"
    assert not failed, summary
    return logs


async def log_entries(fault: FaultStack, sid: str) -> Entries:
    client = connect(fault.redis.url)
    try:
        return await CallLog(client, 16).entries(sid)
    finally:
        await client.aclose()


def answered_twice(entries: Entries) -> bool:
    """A turn whose reply text was written twice (two chunks of one turn, same text)."""
    seen: set[tuple[int, str]] = set()
    for _, e in entries:
        if isinstance(e, ev.AgentText) and e.text:
            if (e.turn_id, e.text) in seen:
                return True
            seen.add((e.turn_id, e.text))
    return False


async def describe(fault: FaultStack, result: CallResult) -> str:
    client = connect(fault.redis.url)
    try:
        entries = await CallLog(client, 16).entries(result.call_sid)
    finally:
        await client.aclose()
    seen = [e.describe() for e in result.events if e.kind in CALLER_SAW]
    logged = [
        f"{entry_id} {e.type} "
        + " ".join(
            f"{k}={getattr(e, k)!r}"
            for k in ("turn_id", "replica", "reason", "handover", "text")
            if hasattr(e, k)
        )
        for entry_id, e in entries
        if not isinstance(e, QUIET)
    ]
    async with httpx.AsyncClient() as http:
        url = f"http://127.0.0.1:{fault.stack.ports.stt}/sim/listen/sessions"
        sessions = (await http.get(url, timeout=30)).json()
    stt = [
        f"STT socket {s['request_id']}: audio {s['audio_ms']} ms, offset {s['audio_offset_ms']},"
        f" {s['messages_sent']} messages, closed={s['closed']} {s['close_code']}"
        for s in sessions
        if result.call_sid in s["tags"]
    ]
    return "\n".join(
        [
            f"--- {result.call_sid}: resumes={result.resumes} close={result.close_code} "
            f"{result.close_reason!r} hangup_by={result.hangup_by} error={result.error}",
            *stt,
            *(f"caller warning: {w}" for w in result.warnings),
            "caller saw:",
            *seen,
            "after-stream answered:",
            *result.after_stream_twimls,
            "call log:",
            *logged,
        ]
    )


def report(name: str, value: str) -> None:
    print(f"\nFIGURE {name}: {value}")


def report_caller_silence(what: str, results: list[CallResult]) -> None:
    worst = max((s, r.call_sid) for r in results for s in silences(r))
    report(f"max silence at the caller {what}", f"{worst[0]:.0f} ms ({worst[1]})")
    assert worst[0] <= HUNG_MS, f"{worst[1]}: {worst[0]:.0f} ms of silence, the call hung"


async def test_redis_restart_during_20_calls_every_call_goes_on(fault: FaultStack) -> None:
    """Redis stops (SIGTERM, AOF fsync always) for ~1 s while 20 calls are mid-call: no
    service exits, all 20 calls go on to the caller's hangup, every record is complete."""
    fault.set_policy(booking_policy(slot(9), BOOKED))
    pids = {label: proc.pid for label, proc in fault.stack.procs.items()}
    calls = [await start_call(fault, LINES) for _ in range(CALLS)]
    # mid-call: every call's first line has become a turn, and none has ended
    before = await until_every_call(fault, calls, has(ev.TurnRequested), "a first turn")
    assert not [s for s, entries in before.items() if has(ev.CallEnded)(entries)]

    stopping = time.monotonic()
    await asyncio.to_thread(fault.redis.stop)  # SIGTERM; off the loop: the callers talk on
    down = time.monotonic()
    await asyncio.sleep(DOWN_S)
    await asyncio.to_thread(fault.redis.start)  # returns once it answers PING (AOF loaded)
    up = time.monotonic()
    report(
        "Redis down (stopped until it answered PING again)",
        f"{up - down:.2f} s (+{down - stopping:.2f} s to stop)",
    )

    results = list(
        await asyncio.wait_for(asyncio.gather(*(call for _, call in calls)), CALL_BOUND_S)
    )
    exited = {
        label: proc.returncode
        for label, proc in fault.stack.procs.items()
        if proc.poll() is not None or proc.pid != pids.get(label)
    }
    assert not exited, f"processes exited or were replaced: {exited}"
    assert set(fault.stack.procs) == set(pids), "a process is missing"
    logs = list((await all_complete(fault, results)).values())
    reprompts = sum(
        1
        for entries in logs
        for _, e in entries
        if isinstance(e, ev.AgentText) and REPROMPT in e.text
    )
    report("calls served through the Redis restart", f"{len(results)}/{CALLS}")
    report("reprompts (Are you still there?) across the 20 calls", str(reprompts))
    report_caller_silence("across the 20 calls (any line)", results)


async def test_media_sigterm_during_20_calls_drains_and_none_is_hung_up(
    fault: FaultStack,
) -> None:
    """SIGTERM of the media replica serving more of 20 live calls: it drains (MEDIA_DRAIN_S),
    hands the rest over; every call completes its script, none is hung up, the moved calls
    resume on the other replica through after-stream, one `call.ended` each."""
    fault.set_policy(booking_policy(slot(10), BOOKED))
    calls = [await start_call(fault, LINES) for _ in range(CALLS)]
    greeted = await until_every_call(fault, calls, has(ev.SegmentPlayed), "the greeting heard")
    served = {
        sid: [e.replica for _, e in entries if isinstance(e, ev.StreamStarted)][-1]
        for sid, entries in greeted.items()
    }
    counts = {r: list(served.values()).count(r) for r in set(served.values())}
    busiest = max(counts, key=lambda r: counts[r])
    proc = fault.stack.procs[busiest]
    sent = time.monotonic()
    await fault.kill(busiest, signal.SIGTERM)  # waits for the drained exit off the loop
    report(
        "SIGTERM to exit of the busier media replica",
        f"{time.monotonic() - sent:.2f} s, exit code {proc.returncode}, "
        f"calls per replica at the signal {counts}",
    )
    assert proc.returncode in (0, -signal.SIGTERM), proc.returncode

    results = list(
        await asyncio.wait_for(asyncio.gather(*(call for _, call in calls)), CALL_BOUND_S)
    )
    logs = await all_complete(fault, results)  # none hung up
    on_busiest = [r for r in results if served[r.call_sid] == busiest]
    moved = [r for r in on_busiest if r.resumes >= 1]
    for result in moved:
        entries = logs[result.call_sid]
        handovers = [e for _, e in entries if isinstance(e, ev.StreamEnded) and e.handover]
        assert len(handovers) == 1, (result.call_sid, handovers)
        replicas = [e.replica for _, e in entries if isinstance(e, ev.StreamStarted)]
        assert replicas[0] == busiest and replicas[-1] != busiest, (result.call_sid, replicas)
        texts = [e.text for _, e in entries if isinstance(e, ev.AgentText)]
        assert REPROMPT not in texts, f"{result.call_sid}: the move caused a reprompt"
    assert moved, "no call was still live after the drain: nothing was moved"
    stayed = [r for r in results if served[r.call_sid] != busiest]
    assert all(r.resumes == 0 for r in stayed), "a call of the other replica was moved"
    report(
        "calls served through the SIGTERM",
        f"{len(results)}/{CALLS} completed their script, "
        f"{sum(r.hangup_by != 'caller' for r in results)} hung up by the platform",
    )
    report(
        "calls moved through after-stream",
        f"{len(moved)} of the {len(on_busiest)} "
        f"on {busiest} ({len(on_busiest) - len(moved)} finished within the drain)",
    )
    report_caller_silence("across the 20 calls (any line)", results)
