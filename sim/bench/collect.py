"""Gather every figure of a run: call logs, caller results, sims, media metrics, resources."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import httpx

from shared.bus.streams import connect
from shared.runtime.settings import get_settings
from sim.bench import caller_metrics as cm
from sim.bench import log_metrics as lm
from sim.bench.bench_stack import BenchStack
from sim.bench.caller import BenchCall, BenchLine
from sim.bench.profiles import LatencyProfile
from sim.bench.resources import SERVICES, cpu_pct_per_active_call, cpu_per_call_minute, rss_table
from sim.bench.sampler import Sampled
from sim.bench.stats import Entry, histogram_summary, na, summarize

RECORDER_WAIT_S = 120.0


async def _recorded(database_url: str, call_sids: list[str]) -> int:
    """How many of the calls the recorder stored as completed (waits, bounded)."""
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + RECORDER_WAIT_S
        while True:
            done = int(
                await conn.fetchval(
                    "SELECT count(*) FROM calls WHERE call_sid = ANY($1) AND status = 'completed'",
                    call_sids,
                )
            )
            if done >= len(call_sids) or time.monotonic() > deadline:
                return done
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def _get(client: httpx.AsyncClient, url: str) -> Any:
    resp = await client.get(url)
    resp.raise_for_status()
    return resp.json() if "json" in resp.headers.get("content-type", "") else resp.text


def _log_errors(bench: BenchStack) -> dict[str, int]:
    """ERROR / CRITICAL lines in each process's log."""
    out: dict[str, int] = {}
    for path in sorted(bench.stack.log_dir.glob("*.log")):
        text = path.read_text(errors="replace")
        count = sum(
            1 for line in text.splitlines()
            if '"level": "ERROR"' in line or '"level": "CRITICAL"' in line
            or "Traceback (most recent call last)" in line
        )
        if count:
            out[path.stem] = count
    return out


def _underruns(calls: list[BenchCall]) -> int:
    """Gaps in the agent's audio within one reply, as the caller heard them."""
    total = 0
    for call in calls:
        windows: list[int] = [0]
        for e in call.result.events:
            if e.kind == "say":
                windows.append(0)
            elif e.kind == "agent-audio-start":
                windows[-1] += 1
        total += sum(max(0, n - 1) for n in windows)
    return total


def _value(value: float | int, **extra: Any) -> Entry:
    return {"value": value, **extra}


async def collect_metrics(
    bench: BenchStack,
    calls: list[BenchCall],
    lines: list[BenchLine],
    profile: LatencyProfile,
    sampled: Sampled,
    commands_before: dict[str, int],
    commands_after: dict[str, int],
    database_url: str,
) -> tuple[dict[str, Entry], dict[str, list[float]], dict[str, Any]]:
    """(metrics, raw samples for the plot, details) of a finished run."""
    sids = [c.result.call_sid for c in calls]
    recorded = await _recorded(database_url, sids)
    redis = connect(bench.embedded.redis_url, cluster=bench.redis_cluster)
    try:
        logs = await lm.read_call_logs(redis, get_settings().stream_slot_groups, sids)
    finally:
        await redis.aclose()
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        stt_sessions = await _get(client, bench.stt_url + "/sim/listen/sessions")
        tts_sessions = await _get(client, bench.tts_url + "/sim/speak/sessions")
        media_text = await _get(client, bench.media_url + "/metrics")
    stt_bytes: dict[str, int] = {}
    for s in stt_sessions:
        for tag in s["tags"]:
            stt_bytes[tag] = stt_bytes.get(tag, 0) + int(s["bytes"])

    samples = {
        "platform_added_ms": lm.platform_added_ms(logs, profile),
        "voice_to_voice_ms": cm.voice_to_voice_ms(calls, lines),
        "greeting_ms": cm.greeting_heard_ms(calls),
        "greeting_server_ms": lm.greeting_server_ms(logs),
        "barge_in_heard_ms": cm.barge_heard_ms(calls),
    }
    reactions, barge_reason = lm.barge_reactions_ms(logs)
    samples["barge_in_reaction_ms"] = reactions
    samples["barge_in_decision_ms"] = lm.barge_decisions_ms(logs)
    spoken, over_agent = cm.barges_over_agent(calls)

    call_errors = [f"{c.result.call_sid}: {c.result.error}" for c in calls if c.result.error]
    provider_errors = lm.provider_errors(logs)
    bad_ends = {s: r for s, r in lm.end_reasons(logs).items() if r != "caller-hangup"}
    log_errors = _log_errors(bench)
    not_recorded = len(calls) - recorded
    error_count = (
        len(call_errors) + len(provider_errors) + len(bad_ends) + sum(log_errors.values())
        + not_recorded
    )
    inbound_dropped = cm.inbound_dropped_frames(calls, stt_bytes)
    clears = sum(c.result.clears for c in calls)
    tts_sent = sum(int(s["audio_bytes_sent"]) for s in tts_sessions)
    caller_got = sum(len(c.result.agent_audio) for c in calls)
    outbound_missing = max(0, tts_sent - caller_got) // cm.FRAME_BYTES
    outbound_dropped = outbound_missing if clears == 0 else 0

    minutes = cm.call_minutes(calls)
    commands = {k: commands_after.get(k, 0) - commands_before.get(k, 0) for k in commands_after}
    commands = {k: v for k, v in commands.items() if v > 0}
    command_total = sum(commands.values())
    rss = rss_table(sampled)
    media_rss = rss.get("media", {}).get("growth_mb_per_active_call")

    preempt = lm.preemption(logs)
    resolved = preempt["used"] + preempt["discarded"]
    metrics: dict[str, Entry] = {
        "platform_added_ms": summarize(samples["platform_added_ms"], "no turn has both marks"),
        "voice_to_voice_ms": summarize(samples["voice_to_voice_ms"], "no answered turn"),
        "provider_latency_sum_ms": _value(
            profile.provider_sum_ms(get_settings().stt_endpointing_ms),
            source="endpointing + STT + LLM first token + TTS first byte",
        ),
        "preempt_used": _value(round(preempt["used"] / resolved, 3), **preempt)
        if resolved
        else na(f"no preemptive reply ({preempt['turns']} caller turns)"),
        "wasted_tokens": _value(preempt["wasted_tokens"]),
        "false_interrupt_rate": na("measured on the labelled clip set (branch turns, issue 17)"),
        "greeting_ms": summarize(samples["greeting_ms"], "no greeting audio received"),
        "greeting_server_ms": summarize(samples["greeting_server_ms"], "no greeting mark"),
        "barge_in_reaction_ms": summarize(reactions, barge_reason),
        "barge_in_decision_ms": summarize(samples["barge_in_decision_ms"], barge_reason),
        "barge_in_heard_ms": summarize(
            samples["barge_in_heard_ms"],
            f"no clear received ({over_agent} of {spoken} barge-in lines started while the "
            "agent was still playing)",
        ),
        "inbound_forward_ms": histogram_summary(
            media_text, "media_inbound_forward_seconds", "media /metrics has no samples"
        ),
        "outbound_forward_ms": histogram_summary(
            media_text, "media_outbound_forward_seconds", "media /metrics has no samples"
        ),
        "outbound_underruns": _value(_underruns(calls)),
        "cpu_s_per_call_minute": {
            name: v for name, v in cpu_per_call_minute(sampled, minutes).items()
        },
        "media_cpu_pct_per_active_call": cpu_pct_per_active_call(sampled, "media"),
        "rss_mb": rss,
        "media_rss_growth_mb_per_active_call": _value(media_rss)
        if media_rss is not None
        else na("no RSS samples of media"),
        "redis_commands_per_call": _value(round(command_total / len(calls), 1))
        if calls
        else na("no calls"),
        "errors": _value(error_count),
        "dropped_frames": _value(
            inbound_dropped + outbound_dropped,
            inbound=inbound_dropped,
            outbound=outbound_dropped if clears == 0 else None,
        ),
    }
    details = {
        "call_minutes": round(minutes, 2),
        "calls_recorded": recorded,
        "call_errors": call_errors[:20],
        "provider_errors": provider_errors[:20],
        "unexpected_end_reasons": dict(list(bad_ends.items())[:20]),
        "log_errors": log_errors,
        "barge_in_lines": {"spoken": spoken, "while_agent_playing": over_agent},
        "clears_received": clears,
        "outbound_bytes": {"tts_sent": tts_sent, "caller_received": caller_got},
        "redis_commands_top": dict(sorted(commands.items(), key=lambda kv: -kv[1])[:12]),
        "services": list(SERVICES),
        "warnings": [w for c in calls for w in c.result.warnings][:20],
    }
    return metrics, samples, details
