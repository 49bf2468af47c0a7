"""`frontdesk bench --speech local`: the self-hosted speech service under concurrent calls.

Starts one speech replica (`python -m services.speech`, its own process), then for each level
of concurrency runs that many callers at once. Each caller is media's own STT client
(`DeepgramStt`, the real deepgram-sdk socket) streaming a spoken utterance (espeak-ng, 8 kHz
µ-law) `turns` times in real time, 20 ms frames, with 1.5 s of silence after each.

Measured per level:
* STT latency after speech end: wall time from the last frame of an utterance's speech being
  sent to its `speech_final` result arriving (includes the endpointing silence, 300 ms);
* word error rate of the finals against the sentence;
* CPU of the speech process (user+system, psutil: recognition and the replies' synthesis)
  per call-minute and per audio second;
A level "holds" when every utterance got its final, p95 latency is under `--max-p95-s` and the
WER stays under 20 %; capacity is the largest level that holds (levels stop after two
failures in a row).

On each speech_final the caller asks the same replica's `/v1/speak` (Piper) for a reply and
times its first audio frame: TTS first frame, and voice-to-voice at the caller (speech end to
the first reply frame; the LLM's time is left out, as the platform's LLM is scripted here).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from services.media.caller.stt_deepgram import DeepgramStt, SttTranscript
from shared.runtime.settings import Settings

ASSET = Path(__file__).resolve().parents[2] / "tests" / "assets" / "speech" / "book_table"
SILENCE = b"\xff"
FRAME = 160
GAP_MS = 1500
REPLY = "Sure, I can book a table for four on Friday at seven. May I have your name?"
FINAL_WAIT_S = 20.0  # after the last frame, how long the last finals may still take
NUMBER_WORDS = {"4": "four", "7": "seven", "2": "two", "3": "three", "5": "five"}


@dataclass
class LevelResult:
    """One concurrency level."""

    calls: int
    utterances: int
    finals: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_max_s: float | None
    wer: float | None
    cpu_s: float
    audio_s: float
    cpu_per_call_minute_s: float
    cpu_per_audio_s: float
    final_decode_mean_s: float | None  # Whisper time of a final alone (its queue wait excluded)
    tts_first_frame_p50_s: float | None  # Speak+Flush -> first reply frame, at the caller
    voice_to_voice_p50_s: float | None  # speech end -> first reply frame (LLM left out)
    voice_to_voice_p95_s: float | None
    interim_decodes: int
    holds: bool


@dataclass
class SpeechBenchReport:
    """What `--speech local` measured."""

    machine: str
    load_average: str  # 1-minute load of the box at the start and the end (shared machine)
    decode_workers: int
    interim_every_ms: int
    levels: list[LevelResult] = field(default_factory=list)
    capacity_calls: int = 0
    voice_to_voice_note: str = "STT latency + TTS first frame at the caller; no LLM time"


def normalized_words(text: str) -> list[str]:
    """Lower-case words, digits spelled as words (Whisper writes '4' for 'four')."""
    words = re.findall(r"[a-z0-9']+", text.lower())
    return [NUMBER_WORDS.get(w, w) for w in words]


def word_errors(reference: str, heard: str) -> tuple[int, int]:
    """(edit distance in words, reference length)."""
    ref, hyp = normalized_words(reference), normalized_words(heard)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)


@dataclass
class TurnResult:
    """One caller utterance and the agent's spoken reply, timed at the caller."""

    stt_s: float  # last speech frame sent -> speech_final received
    text: str
    tts_first_frame_s: float | None = None  # Speak+Flush sent -> first audio frame received
    voice_to_voice_s: float | None = None  # last speech frame sent -> first reply frame


async def _first_reply_frame(tts_url: str, key: str) -> float:
    """Seconds from Speak+Flush of the reply to its first audio frame (one socket a reply)."""
    query = "/v1/speak?encoding=mulaw&sample_rate=8000"
    headers = {"Authorization": f"Token {key}"}
    async with connect(tts_url + query, additional_headers=headers, max_size=None) as ws:
        began = time.monotonic()
        await ws.send(json.dumps({"type": "Speak", "text": REPLY}))
        await ws.send(json.dumps({"type": "Flush"}))
        async for message in ws:
            if isinstance(message, bytes) and message:
                first = time.monotonic() - began
                await ws.send(json.dumps({"type": "Clear"}))
                await ws.send(json.dumps({"type": "Close"}))
                return first
    raise RuntimeError("the TTS socket closed before any audio")


async def _caller(url: str, key: str, sid: str, speech: bytes, turns: int) -> list[TurnResult]:
    """Stream `turns` utterances in real time; on each speech_final ask the TTS for the reply.
    Per turn answered: STT latency after speech end, the text of its finals, TTS first frame,
    and voice-to-voice (STT + TTS; the LLM is left out: the platform's is scripted)."""
    stt = DeepgramStt(Settings(deepgram_stt_url=url, deepgram_api_key=key), sid)
    await stt.open()
    lead, period = 4000, len(speech) + GAP_MS * 8  # bytes = samples (µ-law)
    ends = [lead + k * period + len(speech) for k in range(turns)]
    sent_end: list[float] = []  # wall time the last speech frame of turn k was sent
    results: dict[int, TurnResult] = {}
    texts: dict[int, list[str]] = {k: [] for k in range(turns)}
    replies: list[asyncio.Task[None]] = []

    async def reply(turn: int) -> None:
        first = await _first_reply_frame(url, key)
        results[turn].tts_first_frame_s = first
        results[turn].voice_to_voice_s = results[turn].stt_s + first

    async def read() -> None:
        async for event in stt.events():
            if not isinstance(event, SttTranscript) or not event.is_final:
                continue
            middle = (event.start_ms + event.end_ms) * 4  # bytes into the stream
            turn = min(max((middle - lead) // period, 0), turns - 1)
            texts[turn].append(event.text)
            if event.speech_final and turn < len(sent_end) and turn not in results:
                results[turn] = TurnResult(time.monotonic() - sent_end[turn], "")
                replies.append(asyncio.create_task(reply(turn)))

    reader = asyncio.create_task(read())
    audio = SILENCE * lead + (speech + SILENCE * (GAP_MS * 8)) * turns
    start = time.monotonic()
    for pos in range(0, len(audio), FRAME):
        await stt.send(audio[pos : pos + FRAME])
        while len(sent_end) < turns and pos + FRAME >= ends[len(sent_end)]:
            sent_end.append(time.monotonic())
        await asyncio.sleep(max(0.0, start + (pos + FRAME) / 8000 - time.monotonic()))
    deadline = time.monotonic() + FINAL_WAIT_S  # a final that never comes counts as missing
    pos = len(audio)
    while len(results) < turns and time.monotonic() < deadline and not reader.done():
        await stt.send(SILENCE * FRAME)  # the line stays open, as on a call
        pos += FRAME
        await asyncio.sleep(max(0.0, start + pos / 8000 - time.monotonic()))
    with contextlib.suppress(ConnectionClosed):
        await stt.close()
    reader.cancel()
    await asyncio.gather(*replies, return_exceptions=True)
    for turn, result in results.items():
        result.text = " ".join(texts[turn])
    return [results[k] for k in sorted(results)]


def _speech_bytes() -> bytes:
    return ASSET.with_suffix(".ulaw").read_bytes()


def decode_counters(base_url: str) -> dict[str, tuple[float, float]]:
    """speech_decode_seconds (sum, count) by kind, from the replica's /metrics."""
    text = httpx.get(f"{base_url}/metrics", timeout=5).text
    out: dict[str, tuple[float, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "speech_decode_seconds":
            continue
        for sample in family.samples:
            kind = sample.labels.get("kind", "")
            total, count = out.get(kind, (0.0, 0.0))
            if sample.name.endswith("_sum"):
                out[kind] = (sample.value, count)
            elif sample.name.endswith("_count"):
                out[kind] = (total, sample.value)
    return out


async def run_level(
    url: str, key: str, proc: psutil.Process, calls: int, turns: int, max_p95_s: float
) -> LevelResult:
    """`calls` concurrent callers, measured."""
    speech = _speech_bytes()
    reference = ASSET.with_suffix(".txt").read_text().strip()
    http = url.replace("ws://", "http://")
    decodes0 = decode_counters(http)
    cpu0 = proc.cpu_times()
    outcomes = await asyncio.gather(
        *(_caller(url, key, f"CAbench{n:04d}", speech, turns) for n in range(calls))
    )
    cpu1 = proc.cpu_times()
    decodes1 = decode_counters(http)
    final_s = decodes1.get("final", (0.0, 0.0))[0] - decodes0.get("final", (0.0, 0.0))[0]
    finals_n = decodes1.get("final", (0.0, 0.0))[1] - decodes0.get("final", (0.0, 0.0))[1]
    interims_n = decodes1.get("interim", (0.0, 0.0))[1] - decodes0.get("interim", (0.0, 0.0))[1]
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    turns_done = [t for outcome in outcomes for t in outcome]
    latencies = sorted(t.stt_s for t in turns_done)
    errors = [word_errors(reference, t.text) for t in turns_done]
    tts = sorted(t.tts_first_frame_s for t in turns_done if t.tts_first_frame_s is not None)
    v2v = sorted(t.voice_to_voice_s for t in turns_done if t.voice_to_voice_s is not None)
    wer = sum(e for e, _ in errors) / sum(n for _, n in errors) if errors else None
    audio_s = calls * (0.5 + turns * (len(speech) / 8000 + GAP_MS / 1000))
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)] if latencies else None
    holds = (
        len(latencies) == calls * turns
        and p95 is not None
        and p95 <= max_p95_s
        and wer is not None
        and wer <= 0.2
    )
    return LevelResult(
        calls=calls,
        utterances=calls * turns,
        finals=len(latencies),
        latency_p50_s=round(statistics.median(latencies), 3) if latencies else None,
        latency_p95_s=round(p95, 3) if p95 is not None else None,
        latency_max_s=round(latencies[-1], 3) if latencies else None,
        wer=round(wer, 4) if wer is not None else None,
        cpu_s=round(cpu, 2),
        audio_s=round(audio_s, 1),
        cpu_per_call_minute_s=round(cpu / audio_s * 60, 2),
        cpu_per_audio_s=round(cpu / audio_s, 4),
        final_decode_mean_s=round(final_s / finals_n, 3) if finals_n else None,
        tts_first_frame_p50_s=round(statistics.median(tts), 3) if tts else None,
        voice_to_voice_p50_s=round(statistics.median(v2v), 3) if v2v else None,
        voice_to_voice_p95_s=round(v2v[max(0, round(0.95 * len(v2v)) - 1)], 3) if v2v else None,
        interim_decodes=int(interims_n),
        holds=holds,
    )


def _start_speech(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.speech"],
        env=os.environ | env | {"SPEECH_PORT": str(port)},
    )
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"speech service exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError("speech service did not come up in 120 s")
        time.sleep(0.2)


def levels_up_to(calls: int) -> list[int]:
    """1, 2, 4, ... up to `calls` (and `calls` itself)."""
    levels = [1]
    while levels[-1] * 2 < calls:
        levels.append(levels[-1] * 2)
    return sorted({*levels, calls})


def run_speech_bench(levels: list[int], turns: int, out_dir: Path, max_p95_s: float) -> Path:
    """Run the levels in order (stopping after two in a row do not hold); write JSON."""
    from frontdesk.supervisor import free_port

    port, key = free_port(), "speech-bench"
    settings = Settings()
    proc = _start_speech(port, {"SPEECH_API_KEY": key, "ALLOW_INSECURE_DEFAULTS": "true"})
    report = SpeechBenchReport(
        machine=f"{os.cpu_count()} cores (shared box: other engineers' load included)",
        load_average=f"{os.getloadavg()[0]:.1f}",
        decode_workers=settings.speech_decode_workers,
        interim_every_ms=settings.speech_interim_every_ms,
    )
    try:
        ps = psutil.Process(proc.pid)
        url = f"ws://127.0.0.1:{port}"
        asyncio.run(_first_reply_frame(url, key))  # unmeasured: loads the Piper voice
        for calls in levels:
            level = asyncio.run(run_level(url, key, ps, calls, turns, max_p95_s))
            report.levels.append(level)
            print(json.dumps(asdict(level)), flush=True)
            if level.holds:
                report.capacity_calls = calls
            elif len(report.levels) >= 2 and not report.levels[-2].holds:
                break  # two levels in a row failed: past capacity
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    report.load_average += f" -> {os.getloadavg()[0]:.1f}"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"speech-local-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(asdict(report), indent=2))
    return path
