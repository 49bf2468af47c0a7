"""Media's CPU per call when callers only stream audio: the per-frame floor of the hot path.

    uv run python -m sim.bench.media_floor --calls 40 --silence-s 10

Starts the platform the way `make bench` does, places one warm-up call and then N concurrent
calls that hear the greeting and stay silent for `--silence-s` (no turns, no VAD: only
Twilio frames in, STT frames out), and prints media's CPU over the calls as % of one core per
call and CPU seconds per call-minute (user and system).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import psutil

from shared.runtime.settings import get_settings
from sim.bench.bench_stack import start_bench_stack
from sim.bench.profiles import profile_named
from sim.twilio_call_model import CallResult, CallScript, Silence, TwilioCallerOptions
from sim.twilio_caller import place_call
from sim.twilio_webhook import new_sid


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sim.bench.media_floor", description=__doc__)
    p.add_argument("--calls", type=int, default=40)
    p.add_argument("--silence-s", type=float, default=10.0)
    args = p.parse_args(argv)
    settings = get_settings()
    where = Path(settings.embedded_dir) / "bench"
    bench = start_bench_stack(
        settings.redis_url,
        settings.database_url,
        where,
        where / "logs" / f"media-floor-{int(time.time())}",
        profile_named("zero"),
    )
    try:
        media = psutil.Process(bench.stack.procs["media"].pid)

        async def call(i: int) -> CallResult:
            opts = TwilioCallerOptions(
                gateway_url=bench.gateway_url,
                auth_token=bench.env.get("TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
                to_number=bench.to_number,
                from_number=f"+4477008{i:05d}",
                call_sid=new_sid("CA"),
                max_call_s=args.silence_s + 60,
                answer_timeout_s=15,
            )
            return await place_call(opts, CallScript([Silence(args.silence_s)]))

        async def run() -> None:
            await call(99999)  # warm-up
            before, t0 = media.cpu_times(), time.monotonic()
            results = await asyncio.gather(*(call(i) for i in range(args.calls)))
            after, wall = media.cpu_times(), time.monotonic() - t0
            user, system = after.user - before.user, after.system - before.system
            call_s = args.calls * wall
            errors = [r.error for r in results if r.error]
            print(
                f"{args.calls} calls, {wall:.1f} s: media CPU {user + system:.2f} s "
                f"(user {user:.2f}, system {system:.2f}) = "
                f"{100 * (user + system) / call_s:.3f} % of a core per call, "
                f"{60 * (user + system) / call_s:.3f} CPU s per call-minute; "
                f"errors {len(errors)} {errors[:2]}"
            )

        asyncio.run(run())
    finally:
        bench.stop()


if __name__ == "__main__":
    main()
