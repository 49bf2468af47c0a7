"""A Redis server of a test's own (Debian's redis-server, AOF on), which the test may stop and
start again: the machine's shared Redis is never restarted."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from frontdesk.supervisor import free_port

REDIS_SERVER = "/usr/bin/redis-server"


@dataclass
class OwnRedis:
    """redis-server on a free port, its data (AOF) in `directory`."""

    directory: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, limit_s: float = 30.0) -> None:
        """Start the server and wait until it answers PING (AOF loaded)."""
        log = open(self.directory / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "always",
                "--save", "", "--protected-mode", "no",
            ],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + limit_s
        while True:
            try:
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return
            except redis.exceptions.RedisError:
                pass
            assert self.proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not come up"
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server the way a crash would (SIGKILL); AOF (fsync always) keeps the data."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None
