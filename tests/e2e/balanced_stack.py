"""Gateway and media replicas behind a real HAProxy (frontdesk/replicas.py, the same code as
`frontdesk up --replicas`), sharing the session platform's workers, simulators, Redis and
Postgres. Placement tests start one per test: replicas are killed or filled."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from frontdesk.balancer import haproxy_path, server_states, wait_states
from frontdesk.replicas import Replicated, start_replicated
from frontdesk.supervisor import Ports, Stack, service_env
from tests.conftest import Platform

CHECK_MS = 500  # HAProxy's /readyz interval here (default 1000)


@dataclass
class Balanced:
    stack: Stack
    replicated: Replicated
    env: dict[str, str]

    @property
    def gateway(self) -> str:
        """The balancer's gateway address (what Twilio is configured with)."""
        return f"http://127.0.0.1:{self.stack.ports.gateway}"

    def label_of(self, replica_name: str) -> str:
        """The process label (media, media-1, ...) of a REPLICA_NAME (label-pid-port)."""
        label = replica_name.rsplit("-", 2)[0]
        assert label in self.replicated.layout.replicas["media"], replica_name
        return label

    def kill(self, label: str) -> None:
        """kill -9 one replica."""
        self.stack.kill(label, signal.SIGKILL)

    def wait_status(self, label: str, status: str) -> dict[str, str]:
        """Block until HAProxy's health checks report the replica with this status."""
        server = self.replicated.server(label)
        return wait_states(self.stack, self.replicated.layout.stats_port, {server: status})[server]

    def states(self) -> dict[str, dict[str, str]]:
        return server_states(self.replicated.layout.stats_port)

    def readyz(self, label: str) -> tuple[int, dict[str, object]]:
        """One replica's own /readyz (status code, body)."""
        port = self.replicated.port_of(label)
        resp = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5, trust_env=False)
        body: dict[str, object] = json.loads(resp.text)
        return resp.status_code, body


@contextmanager
def balanced_stack(
    platform: Platform,
    log_dir: Path,
    media: int,
    gateway: int = 1,
    replica_env: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[Balanced]:
    """`media` media and `gateway` gateway replicas behind HAProxy (no workers of their own)."""
    if haproxy_path() is None:
        pytest.skip("HAPROXY MISSING: `make balancer-tools` installs Debian's haproxy")
    stack = Stack(ports=Ports.random(), log_dir=log_dir)
    env = platform.env | service_env(stack.ports, with_sims=False) | {"MEDIA_DRAIN_S": "1"}
    counts = {"gateway": gateway, "media": media, "brain": 0, "tools": 0, "recorder": 0}
    try:
        replicated = start_replicated(stack, env, counts, log_dir, CHECK_MS, replica_env)
        yield Balanced(stack, replicated, env)
    finally:
        stack.stop()
