"""CPU of call recording, measured without the rest of the platform.

`python -m sim.bench.recording_cost --calls 20 --call-s 60` drives the media side exactly as a
call does, for `calls` calls of `call-s` seconds each, interleaved (one 20 ms caller frame per
call per tick, agent audio half of the time in 100 ms pieces, a barge-in clear every 10 s, a
chunk stored every `RECORDING_CHUNK_S` to a real local store), then the recorder side (each
call's chunks assembled into its WAV). It prints CPU seconds per call-minute for each side:
the number `make bench` adds per call with recording on. Audio time is simulated (no sleeps),
so the figure is CPU only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from obstore.store import LocalStore

from services.media.recording.timeline import FRAMES_PER_MS, StereoTimeline
from shared.recordings.store import RecordingStore

FRAME = bytes(range(0, 160))
AGENT = bytes(range(96, 256)) * 5  # 100 ms
TICK_MS = 20


async def media_side(store: RecordingStore, calls: int, call_s: float, chunk_s: float) -> float:
    lines = [StereoTimeline() for _ in range(calls)]
    chunk_ticks = int(chunk_s * 1000 / TICK_MS)
    jitter = 300 * FRAMES_PER_MS
    cpu0 = time.process_time()
    for tick in range(int(call_s * 1000 / TICK_MS)):
        now = tick * TICK_MS * FRAMES_PER_MS
        for i, line in enumerate(lines):
            line.caller(now, FRAME)
            if tick % 5 == 0 and (tick // 250) % 2 == 0:  # agent talks every other 5 s
                line.agent(now, AGENT)
            if tick % 500 == 499:
                line.clear(now)
            if tick % chunk_ticks == chunk_ticks - 1:
                start, frames = line.take(now - jitter)
                await store.put_chunk("bench", f"CA{i:032d}", start, frames)
    for i, line in enumerate(lines):
        start, frames = line.finish(int(call_s * 1000) * FRAMES_PER_MS)
        await store.put_chunk("bench", f"CA{i:032d}", start, frames)
    return time.process_time() - cpu0


async def recorder_side(store: RecordingStore, calls: int) -> float:
    cpu0 = time.process_time()
    for i in range(calls):
        await store.finish("bench", f"CA{i:032d}")
    return time.process_time() - cpu0


async def measure(calls: int, call_s: float, chunk_s: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as root:
        store = RecordingStore(LocalStore(Path(root), mkdir=True))
        media = await media_side(store, calls, call_s, chunk_s)
        recorder = await recorder_side(store, calls)
        sizes = [await store.size(f"bench/CA{i:032d}.wav") for i in range(calls)]
        size = sum(s or 0 for s in sizes)
    minutes = calls * call_s / 60
    return {
        "calls": calls,
        "call_s": call_s,
        "chunk_s": chunk_s,
        "media_cpu_s_per_call_minute": round(media / minutes, 5),
        "media_cpu_pct_of_core_per_call": round(100 * media / (calls * call_s), 4),
        "recorder_cpu_s_per_call_minute": round(recorder / minutes, 5),
        "wav_bytes_per_call_minute": round(size / minutes),
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m sim.bench.recording_cost", description=__doc__)
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--call-s", type=float, default=60.0)
    p.add_argument("--chunk-s", type=float, default=2.0)
    a = p.parse_args()
    print(json.dumps(asyncio.run(measure(a.calls, a.call_s, a.chunk_s)), indent=2))


if __name__ == "__main__":
    main()
