"""Per-turn measurements read back from the calls' Redis logs (the platform's own record)."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from services.brain.speakable import SpeakableChunker
from shared.contract import events as ev
from shared.contract import keys
from shared.runtime.settings import get_settings
from sim.bench.profiles import LatencyProfile
from sim.llm_policy import split_arguments, split_text
from sim.openai_server import OpenAISimOptions

LogEntry = dict[str, Any]  # one decoded envelope (any type, known to this build or not)
_SIM_LLM = OpenAISimOptions()
ONSET_WINDOW_S = 2.0


async def read_call_logs(
    redis: Redis, slot_groups: int, call_sids: list[str]
) -> dict[str, list[LogEntry]]:
    """Every entry of each call's stream, decoded as plain JSON (new event types included)."""
    out: dict[str, list[LogEntry]] = {}
    for sid in call_sids:
        raw: Any = await redis.xrange(keys.call_stream(sid, slot_groups))
        out[sid] = [json.loads(fields["e"]) for _, fields in raw if "e" in fields]
    return out


def turn_stages(entries: list[LogEntry]) -> dict[int, dict[str, float]]:
    """{turn id: {stage: wall-clock seconds}} from the latency.mark events (first one wins)."""
    stages: dict[int, dict[str, float]] = {}
    for e in entries:
        if e.get("type") == "latency.mark":
            stages.setdefault(int(e["turn_id"]), {}).setdefault(str(e["stage"]), e["stage_at"])
    return stages


def _first_speakable_chunk_index(reply: str) -> int:
    """Index (in the streamed deltas, role chunk = 0) of the delta that completes the brain's
    first speakable chunk; the finish delta when only the final flush completes it."""
    chunker = SpeakableChunker(first_phrase_words=get_settings().reply_first_phrase_words)
    pieces = split_text(reply, _SIM_LLM.words_per_chunk)
    for i, piece in enumerate(pieces, start=1):
        if chunker.feed(piece):
            return i
    return len(pieces) + 1


def simulated_delay_ms(entries: list[LogEntry], turn_id: int, profile: LatencyProfile) -> float:
    """What the provider simulators added between the final transcript and the turn's first
    audio: each LLM round up to the first speakable text, and the TTS first byte."""
    mine = [e for e in entries if e.get("turn_id") == turn_id]
    first_text = next((i for i, e in enumerate(mine) if e["type"] == "agent.text"), None)
    if first_text is None:
        return 0.0
    before = mine[:first_text]
    delay = 0.0
    for tool in (e for e in before if e["type"] == "tool.requested"):
        pieces = len(split_arguments(str(tool["arguments"]), _SIM_LLM.argument_fragments))
        delay += profile.llm_first_token_ms + profile.llm_inter_chunk_ms * (pieces + 1)
    last_result = max((i for i, e in enumerate(mine) if e["type"] == "tool.result"), default=-1)
    reply = " ".join(str(e["text"]) for e in mine[last_result + 1 :] if e["type"] == "agent.text")
    delay += profile.llm_first_token_ms
    delay += profile.llm_inter_chunk_ms * _first_speakable_chunk_index(reply)
    return delay + profile.tts_first_byte_ms


def platform_added_ms(logs: dict[str, list[LogEntry]], profile: LatencyProfile) -> list[float]:
    """Per caller turn: first audio sent to Twilio - final transcript - simulated delays."""
    out: list[float] = []
    for entries in logs.values():
        for turn_id, stages in turn_stages(entries).items():
            if turn_id == 0 or "stt_final" not in stages or "first_audio_sent" not in stages:
                continue
            gap = (stages["first_audio_sent"] - stages["stt_final"]) * 1000
            out.append(gap - simulated_delay_ms(entries, turn_id, profile))
    return out


def greeting_server_ms(logs: dict[str, list[LogEntry]]) -> list[float]:
    """stream.started -> first greeting audio frame sent (media's own clock)."""
    out: list[float] = []
    for entries in logs.values():
        started = next((e["at"] for e in entries if e["type"] == "stream.started"), None)
        sent = turn_stages(entries).get(0, {}).get("first_audio_sent")
        if started is not None and sent is not None:
            out.append((sent - started) * 1000)
    return out


def barge_event_types() -> list[str]:
    """Event types of this build whose name says barge-in (empty until media emits one)."""
    names: list[str] = []
    for model in vars(ev).values():
        field = getattr(model, "model_fields", {}).get("type")
        default = getattr(field, "default", None)
        if isinstance(default, str) and "barge" in default:
            names.append(default)
    return sorted(set(names))


def barge_reactions_ms(logs: dict[str, list[LogEntry]]) -> tuple[list[float], str]:
    """The platform's reaction: the event that decided the barge-in (a VAD frame or an STT
    message, its `trigger_at`) -> clear sent (the barge-in event's `clear_sent_at`, else its
    `at`, written right after the clear and the TTS cancel), media's clock. How long the
    policy listened before deciding is `barge_decisions_ms`. The second item explains an
    empty list."""
    types = barge_event_types()
    out: list[float] = []
    for entries in logs.values():
        onset: float | None = None
        for e in entries:
            kind = str(e.get("type", ""))
            if kind == "caller.speech_started":
                onset = float(e["at"])
            elif "barge" in kind:
                cleared = float(e.get("clear_sent_at") or e["at"])
                start = e.get("trigger_at")
                if start is None:  # older events: fall back to the speech onset
                    recent = onset is not None and 0 <= cleared - onset <= ONSET_WINDOW_S
                    start = onset if recent else None
                if start is not None:
                    out.append((cleared - float(start)) * 1000)
    if out:
        return out, ""
    if not types:
        return out, "media emits no barge-in event yet (no event type containing 'barge')"
    return out, f"no {', '.join(types)} event in any call log"


def barge_decisions_ms(logs: dict[str, list[LogEntry]]) -> list[float]:
    """How long the barge-in policy listened: caller speech onset (STT) -> the deciding event
    (`trigger_at`). Deliberate: "mhm" must not interrupt, so words or voice time are needed."""
    out: list[float] = []
    for entries in logs.values():
        onset: float | None = None
        for e in entries:
            kind = str(e.get("type", ""))
            if kind == "caller.speech_started":
                onset = float(e["at"])
            elif "barge" in kind and onset is not None and e.get("trigger_at") is not None:
                delta = float(e["trigger_at"]) - onset
                if 0 <= delta <= ONSET_WINDOW_S:
                    out.append(delta * 1000)
    return out


def provider_errors(logs: dict[str, list[LogEntry]]) -> list[str]:
    """provider.error messages of all calls."""
    return [
        f"{e.get('provider')}: {e.get('message')}"
        for entries in logs.values()
        for e in entries
        if e.get("type") == "provider.error"
    ]


def end_reasons(logs: dict[str, list[LogEntry]]) -> dict[str, str]:
    """call.ended reason per call ('missing' when the call never ended)."""
    out: dict[str, str] = {}
    for sid, entries in logs.items():
        ended = [e for e in entries if e.get("type") == "call.ended"]
        out[sid] = str(ended[-1]["reason"]) if ended else "missing"
    return out


def preemption(logs: dict[str, list[LogEntry]]) -> dict[str, int]:
    """Preemptive replies of all calls (issue 17): caller turns, replies started before the
    final (`preempted`), of which `used` and `discarded`, and the discarded ones' tokens."""
    out = {"turns": 0, "preempted": 0, "used": 0, "discarded": 0, "wasted_tokens": 0}
    for entries in logs.values():
        for e in entries:
            kind = e.get("type")
            if kind == "turn.requested" and e.get("source", "caller") == "caller":
                out["turns"] += 1
            elif kind == "turn.preempted":
                out["preempted"] += 1
            elif kind == "turn.preempt_resolved":
                out["used" if e.get("used") else "discarded"] += 1
                out["wasted_tokens"] += int(e.get("wasted_prompt_tokens", 0))
                out["wasted_tokens"] += int(e.get("wasted_completion_tokens", 0))
    return out
