"""What one small socket write costs the writer when the reader is another process that sleeps.

    uv run python -m sim.bench.wakeup_cost

A reader process blocks in recv on loopback TCP; the writer sends 200 bytes, then sleeps 1 ms
(so the reader is asleep again at the next write). The writer's CPU per round, with and
without the send, shows what a write that wakes another process costs on this machine: on a
VM, waking a sleeping process on another vCPU is far dearer than the copy. That is why media
batches quiet caller audio for STT (`services/media/caller/quiet_audio.py`).
"""

from __future__ import annotations

import os
import resource
import socket
import time

ROUNDS = 3000
PAYLOAD = b"x" * 200


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    writer = socket.create_connection(server.getsockname())
    reader, _ = server.accept()
    child = os.fork()
    if child == 0:  # the reader: sleeps in recv until data comes
        writer.close()
        while reader.recv(65536):
            pass
        os._exit(0)
    reader.close()
    for send in (False, True, False, True):
        started = _cpu_s()
        for _ in range(ROUNDS):
            if send:
                writer.send(PAYLOAD)
            time.sleep(0.001)
        per_round_us = (_cpu_s() - started) / ROUNDS * 1e6
        label = "send + sleep 1 ms" if send else "sleep 1 ms only "
        print(f"{label}: {per_round_us:.1f} us of the writer's CPU per round")
    writer.close()
    os.waitpid(child, 0)


if __name__ == "__main__":
    main()
