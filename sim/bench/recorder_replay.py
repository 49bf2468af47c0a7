"""Recorder CPU per call-log entry, measured without the rest of the platform.

N synthetic calls shaped like a bench call (greeting + 3-4 caller turns, ~110 entries: interim
transcripts, latency marks, usage, agent text, audio segments, a barge-in, a tool call) are
appended to their Redis streams in real time by a feeder *subprocess* (so its CPU is not
counted), the way media and brain write them (``CallLog.append``, wall-clock ``at`` stamped when
written). This process runs the recorder's ``record_call`` for every call, as the recorder
service does for each ``call.started`` work item, with post-call costing (no LLM analysis, no
webhook delivery), and reports:

- CPU seconds (``time.process_time``) per 1000 entries and per call-minute;
- SQL statements and transactions per call (SQLAlchemy cursor / commit events, per statement kind).

    uv run python -m sim.bench.recorder_replay --calls 50 --call-s 30

Uses REDIS_URL / DATABASE_URL (defaults: local servers); creates and drops its own database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from sqlalchemy import event

from services.recorder.follower import RecorderDeps, record_call
from services.recorder.postcall import PostCallDeps
from shared.bus.mux import StreamMux
from shared.bus.streams import CallLog, connect
from shared.contract import events as ev
from shared.db.engine import make_engine, make_sessions
from shared.db.migrate import upgrade
from shared.runtime.settings import Settings
from shared.tenancy.pricing import EXAMPLE_PRICES

SELF = resource.RUSAGE_SELF
Step = tuple[float, str, dict[str, Any]]
"""(seconds after the call's start, event type, fields; `*_dt` fields are offsets from now)."""

EVENT_TYPES: dict[str, type[Any]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        ev.CallStarted, ev.StreamStarted, ev.CallEnded, ev.SpeechStarted, ev.TranscriptInterim,
        ev.TranscriptFinal, ev.TurnRequested, ev.BargeIn, ev.AgentText, ev.AgentTurnDone,
        ev.ToolRequested, ev.ToolResult, ev.SegmentSent, ev.SegmentPlayed, ev.LatencyMark,
        ev.Usage,
    )
}
WORDS = "yes I would like to book a table for two tomorrow evening around seven please".split()


def call_plan(rng: random.Random, call_s: float, index: int) -> list[Step]:
    """One call's log as timed steps (same seed, same call)."""
    steps: list[Step] = [
        (0.0, "call.started", {"from_number": "+447700900123", "to_number": "+441632960001"}),
        (0.15, "stream.started", {"stream_sid": f"MZ{index}", "replica": "media-1"}),
    ]
    caller_turns = 3 + index % 2  # 3.5 on average
    tool_turn = rng.randrange(1, caller_turns + 1) if rng.random() < 0.8 else -1
    barge_turns = set(rng.sample(range(caller_turns + 1), k=1 + (rng.random() < 0.4)))
    turn_s = (call_s - 1.0) / (caller_turns + 1)
    for turn in range(caller_turns + 1):
        t = 0.2 + turn * turn_s
        if turn > 0:
            steps.append((t, "caller.speech_started", {"audio_ms": int(t * 1000)}))
            for i in range(6):
                text = " ".join(WORDS[: 2 + i])
                steps.append((t + 0.25 * (i + 1), "transcript.interim", {
                    "text": text, "audio_start_ms": int(t * 1000),
                    "audio_end_ms": int((t + 0.25 * (i + 1)) * 1000)}))
            t += 1.6
            text = " ".join(WORDS[:8])
            steps.append((t, "transcript.final", {
                "text": text, "audio_start_ms": int((t - 1.6) * 1000),
                "audio_end_ms": int(t * 1000), "speech_final": True}))
            steps += [
                (t + 0.01, "latency.mark", {"turn_id": turn, "stage": "speech_end",
                                            "stage_at_dt": -0.3}),
                (t + 0.01, "latency.mark", {"turn_id": turn, "stage": "stt_final",
                                            "stage_at_dt": 0.0}),
                (t + 0.02, "turn.requested", {"turn_id": turn, "text": text}),
            ]
            t += 0.3
            if turn == tool_turn:
                call_id = f"call_{index}_{turn}"
                steps += [
                    (t, "usage", {"provider": "gpt-4o-mini", "metric": "prompt_tokens",
                                  "quantity": 900.0}),
                    (t, "usage", {"provider": "gpt-4o-mini", "metric": "completion_tokens",
                                  "quantity": 24.0}),
                    (t, "tool.requested", {"turn_id": turn, "tool_call_id": call_id,
                                           "name": "find_slots",
                                           "arguments": '{"party_size": 2}'}),
                    (t + 0.05, "tool.result", {"turn_id": turn, "tool_call_id": call_id,
                                               "name": "find_slots", "ok": True,
                                               "content": '{"slots": ["19:00", "19:30"]}'}),
                ]
                t += 0.3
        chunks = 1 if turn == 0 else 2 + (rng.random() < 0.6)
        barged = turn in barge_turns and chunks > 1
        for seq in range(chunks):
            text = f"Sentence {seq} of the answer to turn {turn}, said to the caller."
            steps.append((t, "agent.text", {"turn_id": turn, "seq": seq, "text": text}))
            if seq == 0:
                stages = ["llm_request", "llm_first_token", "first_speakable"] if turn else []
                for stage in stages:
                    steps.append((t, "latency.mark", {"turn_id": turn, "stage": stage,
                                                      "stage_at_dt": -0.1}))
            if barged and seq == chunks - 1:
                break  # this chunk was never synthesized
            steps.append((t + 0.05, "audio.segment_sent", {
                "turn_id": turn, "seq": seq, "mark": f"t{turn}-s{seq}", "text": text,
                "audio_bytes": 12000}))
            if seq == 0:
                for stage in ("tts_first_byte", "first_audio_sent"):
                    steps.append((t + 0.05, "latency.mark", {"turn_id": turn, "stage": stage,
                                                             "stage_at_dt": -0.01}))
            steps.append((t + 1.55 * (seq + 1), "audio.segment_played", {
                "turn_id": turn, "seq": seq, "mark": f"t{turn}-s{seq}"}))
            t += 0.3
        if turn:
            for metric, qty in (("prompt_tokens", 1200.0), ("completion_tokens", 40.0)):
                steps.append((t, "usage", {"provider": "gpt-4o-mini", "metric": metric,
                                           "quantity": qty}))
            if rng.random() < 0.15:
                steps.append((t, "usage", {"provider": "gpt-4o-mini",
                                           "metric": "cached_prompt_tokens", "quantity": 1024.0}))
        steps.append((t, "agent.turn_done", {"turn_id": turn, "chunks": chunks}))
        if barged:
            steps.append((t + 0.6, "caller.speech_started", {"audio_ms": int(t * 1000)}))
            steps.append((t + 0.7, "caller.barge_in", {
                "turn_id": turn, "trigger": "speech", "trigger_at_dt": -0.05,
                "heard_text": "Sentence 0", "cleared_marks": [f"t{turn}-s{chunks - 2}"]}))
    end = max(s[0] for s in steps) + 0.3
    steps += [
        (end, "usage", {"provider": "deepgram", "metric": "stt_seconds", "quantity": end}),
        (end, "usage", {"provider": "deepgram", "metric": "tts_characters", "quantity": 600.0}),
        (end + 0.01, "call.ended", {"reason": "caller-hangup", "duration_s": end}),
    ]
    steps.sort(key=lambda s: s[0])
    return steps


@dataclass
class Plan:
    """Every call of a run: sid -> steps."""

    calls: dict[str, list[Step]]

    @classmethod
    def make(cls, calls: int, call_s: float, seed: int, prefix: str) -> Plan:
        rng = random.Random(seed)
        return cls({f"CA{prefix}{i:05d}": call_plan(rng, call_s, i) for i in range(calls)})


def build(sid: str, kind: str, values: dict[str, Any]) -> Any:
    now = time.time()
    data: dict[str, Any] = {"call_sid": sid, "at": now}
    for key, value in values.items():
        if key.endswith("_dt"):
            data[key[:-3]] = now + value
        else:
            data[key] = value
    return EVENT_TYPES[kind](**data)


async def feed(args: argparse.Namespace) -> None:
    """The feeder subprocess: append each call's steps at their times, calls staggered."""
    plan = Plan.make(args.calls, args.call_s, args.seed, args.prefix)
    redis = connect(args.redis_url)
    log = CallLog(redis, Settings().stream_slot_groups)
    start = time.monotonic()

    async def one(n: int, sid: str, steps: list[Step]) -> None:
        base = start + n * args.stagger_s
        for at, kind, values in steps:
            delay = base + at / args.speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await log.append(build(sid, kind, values))

    await asyncio.gather(*(one(n, sid, s) for n, (sid, s) in enumerate(plan.calls.items())))
    await redis.aclose()


def _with_db(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _kind(statement: str) -> str:
    words = re.sub(r"\s+", " ", statement).strip().split(" ")
    verb = words[0].upper()
    table = next((w for w in words[1:6] if w.islower() and w.isidentifier()), "")
    return f"{verb} {table}".strip()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    admin = args.database_url.replace("postgresql+asyncpg://", "postgresql://")
    dbname = f"fd_replay_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{dbname}"')
    await conn.close()
    db_url = _with_db(admin, f"/{dbname}")
    await asyncio.to_thread(upgrade, db_url)
    plan = Plan.make(args.calls, args.call_s, args.seed, args.prefix)
    entries = sum(len(s) for s in plan.calls.values())
    engine = make_engine(db_url, pool_size=10)  # as the recorder service
    sessions = make_sessions(engine)
    kinds: Counter[str] = Counter()
    commits = 0

    def on_execute(*a: Any) -> None:
        kinds[_kind(a[2])] += 1

    def on_commit(*_: Any) -> None:
        nonlocal commits
        commits += 1

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    event.listen(engine.sync_engine, "commit", on_commit)
    redis = connect(args.redis_url)
    mux = StreamMux.from_url(args.redis_url, block_ms=Settings().stream_block_ms)
    settings = Settings(analysis_enabled=False)
    postcall = PostCallDeps(
        sessions=sessions, settings=settings, prices=EXAMPLE_PRICES, llm=None, deliverer=None
    )
    extra: dict[str, Any] = {}
    if args.flush_s is not None and "flush_s" in {f.name for f in fields(RecorderDeps)}:
        extra["flush_s"] = args.flush_s  # absent in the code before group commit
    deps = RecorderDeps(
        log=CallLog(redis, settings.stream_slot_groups), mux=mux, sessions=sessions,
        stream_ttl_s=600, postcall=postcall, **extra,
    )
    feeder = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sim.bench.recorder_replay", "--feed",
        "--calls", str(args.calls), "--call-s", str(args.call_s), "--seed", str(args.seed),
        "--prefix", args.prefix, "--speed", str(args.speed),
        "--stagger-s", str(args.stagger_s), "--redis-url", args.redis_url,
    )
    cpu0, wall0, usage0 = time.process_time(), time.monotonic(), resource.getrusage(SELF)
    try:
        await asyncio.gather(*(record_call(deps, sid) for sid in plan.calls))
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        usage = resource.getrusage(SELF)
    finally:
        if feeder.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                feeder.terminate()
        await feeder.wait()
        await mux.close()
        for sid in plan.calls:
            await redis.delete(deps.log.key(sid))
        await redis.aclose()
        await engine.dispose()
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        await conn.close()
    call_minutes = sum(max(s[0] for s in steps) for steps in plan.calls.values()) / 60 / args.speed
    statements = sum(kinds.values())
    return {
        "calls": args.calls,
        "entries": entries,
        "entries_per_call": round(entries / args.calls, 1),
        "flush_s": getattr(deps, "flush_s", "n/a (code without group commit)"),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 3),
        "cpu_user_s": round(usage.ru_utime - usage0.ru_utime, 3),
        "cpu_sys_s": round(usage.ru_stime - usage0.ru_stime, 3),
        "cpu_s_per_1000_entries": round(cpu / entries * 1000, 3),
        "cpu_s_per_call_minute": round(cpu / call_minutes, 3),
        "statements_per_call": round(statements / args.calls, 1),
        "transactions_per_call": round(commits / args.calls, 1),
        "statements_per_call_by_kind": {
            k: round(n / args.calls, 1) for k, n in kinds.most_common()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50, help="concurrent calls")
    parser.add_argument("--call-s", type=float, default=30.0, help="length of each call")
    parser.add_argument("--stagger-s", type=float, default=0.05, help="between call starts")
    parser.add_argument("--speed", type=float, default=1.0, help=">1 replays faster than real")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--flush-s", type=float, default=None, help="recorder_flush_s override")
    parser.add_argument("--prefix", default=uuid.uuid4().hex[:10], help=argparse.SUPPRESS)
    parser.add_argument("--feed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/13"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test",
    )
    args = parser.parse_args()
    if args.feed:
        asyncio.run(feed(args))
        return
    print(json.dumps(asyncio.run(measure(args)), indent=2))


if __name__ == "__main__":
    main()
