"""CPU and RSS of every process of the stack over time (psutil, in a background thread)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil


@dataclass
class ProcessSeries:
    """Samples of one process (or process group): CPU seconds used so far and RSS."""

    name: str
    t_s: list[float] = field(default_factory=list)  # seconds since sampling started
    cpu_s: list[float] = field(default_factory=list)  # cumulative user+system seconds
    rss_mb: list[float] = field(default_factory=list)


@dataclass
class Sampled:
    """Everything the sampler saw."""

    interval_s: float
    series: dict[str, ProcessSeries]
    active_t_s: list[float]
    active_calls: list[int]


def _group_usage(root: psutil.Process, with_children: bool) -> tuple[float, float]:
    procs = [root, *(root.children(recursive=True) if with_children else [])]
    cpu = rss = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            cpu += times.user + times.system
            rss += proc.memory_info().rss
        except psutil.Error:
            continue  # a backend that just exited
    return cpu, rss / 2**20


MACHINE = "machine (all processes)"
"""Series of the whole box's busy CPU time (anything else running shows up here)."""


def _machine_busy_s() -> float:
    t = psutil.cpu_times()
    return float(sum(t)) - t.idle - getattr(t, "iowait", 0.0)


class ProcessSampler:
    """Samples named PIDs every `interval_s` until stopped; `active()` is sampled too, and
    the busy CPU time of the whole machine (series `MACHINE`, no RSS)."""

    def __init__(
        self,
        pids: dict[str, int],
        active: Callable[[], int],
        interval_s: float = 0.5,
        groups: frozenset[str] = frozenset(),
    ) -> None:
        self._procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._groups = groups  # names whose children count too (postgres backends)
        self._active = active
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)
        self._t0 = time.monotonic()
        self.sampled = Sampled(
            interval_s,
            {n: ProcessSeries(n) for n in [*pids, MACHINE]},
            active_t_s=[],
            active_calls=[],
        )

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread.start()

    def stop(self) -> Sampled:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.sampled

    def sample_now(self) -> None:
        now = time.monotonic() - self._t0
        for name, proc in self._procs.items():
            try:
                cpu, rss = _group_usage(proc, name in self._groups)
            except psutil.Error:
                continue  # the process died; the runner reports that separately
            series = self.sampled.series[name]
            series.t_s.append(now)
            series.cpu_s.append(cpu)
            series.rss_mb.append(rss)
        machine = self.sampled.series[MACHINE]
        machine.t_s.append(now)
        machine.cpu_s.append(_machine_busy_s())
        self.sampled.active_t_s.append(now)
        self.sampled.active_calls.append(self._active())

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample_now()
            self._stop.wait(self._interval)
        self.sample_now()
