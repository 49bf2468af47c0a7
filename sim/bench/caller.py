"""Bench calls: the caller simulator plus lines that talk over the agent (barge-in)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sim.twilio_call_model import CallResult, CallScript, TwilioCallerOptions
from sim.twilio_call_runner import CallRun, OnEvent
from sim.twilio_call_turns import CallError, CallTurns

GOODBYE = "Great, thanks, bye."
CLEAR_WAIT_S = 5.0  # after a barge-in line, how long to wait for the agent to stop


@dataclass(frozen=True)
class BenchLine:
    """One caller turn; `barge_in` lines start while the agent's previous reply still plays."""

    text: str
    barge_in: bool = False


# The reply to OPENING_HOURS is long (bench policy), so a caller can talk over it.
OPENING_HOURS = BenchLine("Hi, what are your opening hours?")
BARGE_IN = BenchLine("Sorry, how much is a haircut?", barge_in=True)
TOOL_CALL = BenchLine("And where are you located?")
EXTRA = BenchLine("How much is a beard trim?")


def bench_lines(turns: int) -> list[BenchLine]:
    """`turns` caller lines: a long answer, a barge-in into it, a tool call, ..., goodbye."""
    if turns < 3:
        raise ValueError("a bench call needs at least 3 caller turns (barge-in, tool, goodbye)")
    if turns == 3:
        return [OPENING_HOURS, BenchLine(TOOL_CALL.text, barge_in=True), BenchLine(GOODBYE)]
    return [OPENING_HOURS, BARGE_IN, TOOL_CALL] + [EXTRA] * (turns - 4) + [BenchLine(GOODBYE)]


@dataclass
class BenchCall:
    """What one bench call observed, on top of the caller simulator's CallResult."""

    result: CallResult
    stream_offset_ms: float | None  # stream start (first frame clock) in the result's t_ms
    barge_lines: list[tuple[float, bool]] = field(default_factory=list)  # (t_ms, agent playing)
    ended_t_ms: float = 0.0


class BenchCallRun(CallRun):
    """A CallRun whose script may barge in; polls at frame granularity to stay cheap."""

    def __init__(
        self,
        opts: TwilioCallerOptions,
        lines: list[BenchLine],
        barge_after_ms: int,
        on_event: OnEvent | None = None,
    ) -> None:
        super().__init__(opts, CallScript(lines=[line.text for line in lines]), on_event)
        self.bench_lines = lines
        self.barge_after_ms = barge_after_ms
        self.barges: list[tuple[float, bool]] = []

    def make_turns(self) -> CallTurns:
        return BenchTurns(self)

    async def run_bench(self) -> BenchCall:
        result = await self.run()
        offset = (self.stream_t0 - self.t0) * 1000 if self.stream_t0 else None
        ended = (time.monotonic() - self.t0) * 1000
        return BenchCall(result, offset, list(self.barges), ended)


class BenchTurns(CallTurns):
    """The bench script: like the caller simulator's, but a barge-in that gets no clear is
    recorded (not an error), and waits are checked once per frame by the call's pacer
    (`CallRun.until_frame`) instead of polling on timers of their own."""

    def __init__(self, run: BenchCallRun) -> None:
        super().__init__(run)
        self.bench = run

    async def converse(self) -> None:
        since = 0
        for line in self.bench.bench_lines:
            if line.barge_in:
                since = await self._barge_in(line, since)
                continue
            await self._await_agent_turn(since)
            since = len(self.run.received)
            await self._say(line.text)
        await self._await_agent_turn(since)
        await self.run._hangup()

    async def _barge_in(self, line: BenchLine, since: int) -> int:
        """Talk once `barge_after_ms` of the agent's reply has played; wait (bounded) for the
        clear. Returns where the agent's next turn starts. Works without barge-in support:
        then the agent simply talks on and no clear is recorded."""
        await self._await_agent_audio(since)
        run, playout = self.run, self.run.playout
        played0 = playout.played_bytes
        enough = self.bench.barge_after_ms * 8

        def barge_now() -> bool:
            return playout.played_bytes - played0 >= enough or playout.is_idle(run.now_ms())

        while playout.played_bytes - played0 < enough:
            self.check_open()
            if playout.is_idle(run.now_ms()):
                break
            await run.until_frame(barge_now)
        playing = not playout.is_idle(run.now_ms())
        self.bench.barges.append(((time.monotonic() - run.t0) * 1000, playing))
        clears = run.result.clears
        await self._say(line.text)
        deadline = time.monotonic() + CLEAR_WAIT_S

        def stop_waiting() -> bool:
            return run.result.clears != clears or time.monotonic() >= deadline

        while playing and not stop_waiting():
            self.check_open()
            await run.until_frame(stop_waiting)
        return len(run.received) if run.result.clears > clears else since

    async def _await_agent_audio(self, since_bytes: int) -> None:
        run = self.run
        start, limit = time.monotonic(), run.opts.answer_timeout_s

        def timed_out() -> bool:
            return time.monotonic() - start > limit

        def ready() -> bool:
            return len(run.received) > since_bytes or timed_out()

        while len(run.received) <= since_bytes:
            self.check_open()
            if timed_out():
                raise CallError(f"agent did not start speaking within {limit}s")
            await run.until_frame(ready)

    async def _await_agent_turn(self, since_bytes: int) -> None:
        """As CallRun's, checked once per frame (100 callers share one event loop with the
        measurements)."""
        await self._await_agent_audio(since_bytes)
        run, playout, o = self.run, self.run.playout, self.run.opts
        pause = max(0, o.pause_before_speaking_ms - 5 * 20)
        start = time.monotonic()

        def finished() -> bool:
            now = run.now_ms()
            drained = playout.drained_at_ms
            return playout.is_idle(now) and drained is not None and now - drained >= pause

        def timed_out() -> bool:
            audio_s = (len(run.received) - since_bytes) / 8000
            return time.monotonic() - start > o.answer_timeout_s + audio_s

        while True:
            self.check_open()
            if finished():
                return
            if timed_out():
                raise CallError(f"agent did not finish its turn within {o.answer_timeout_s}s")
            await run.until_frame(lambda: finished() or timed_out())


async def place_bench_call(
    opts: TwilioCallerOptions, lines: list[BenchLine], barge_after_ms: int
) -> BenchCall:
    """Place one bench call; problems end up in `BenchCall.result.error`."""
    return await BenchCallRun(opts, lines, barge_after_ms).run_bench()
