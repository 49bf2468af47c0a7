"""Two media replicas behind a round-robin proxy, with a gateway of their own whose TwiML
points at the proxy; brain, tools, recorder and the simulators are the session platform's
(workers share Redis, so they serve these calls too). Small and reusable: the fuller
multi-replica fault harness lives in tests/faults/."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from frontdesk.supervisor import Ports, Stack, free_port, wait_http
from shared.bus.streams import CallLog
from shared.contract import events as ev
from tests.conftest import Platform
from tests.e2e.tcp_proxy import RoundRobinProxy

MEDIA = ("media-a", "media-b")


@dataclass
class MediaPair:
    stack: Stack
    proxy: RoundRobinProxy
    gateway_port: int
    replica_names: dict[str, str]  # REPLICA_NAME -> process label

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def label_of(self, replica: str) -> str:
        return self.replica_names[replica]

    def kill(self, label: str) -> None:
        """kill -9 one media replica."""
        self.stack.kill(label, signal.SIGKILL)

    def terminate(self, label: str) -> None:
        """SIGTERM one media replica (it drains); `wait_exit` reaps it."""
        self.stack.procs[label].send_signal(signal.SIGTERM)

    def wait_exit(self, label: str, timeout_s: float) -> int:
        code = self.stack.procs[label].wait(timeout=timeout_s)
        self.stack.procs.pop(label)
        return code


@pytest.fixture
def media_pair(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaPair]:
    ports = {label: free_port() for label in MEDIA}
    proxy = RoundRobinProxy(list(ports.values())).start()
    gateway_port = free_port()
    stack = Stack(ports=Ports.random(), log_dir=tmp_path_factory.mktemp("pair-logs"))
    env = platform.env | {
        "GATEWAY_PORT": str(gateway_port),
        "PUBLIC_GATEWAY_URL": f"http://127.0.0.1:{gateway_port}",
        "PUBLIC_MEDIA_WS_URL": f"ws://127.0.0.1:{proxy.port}/twilio/stream",
        "MEDIA_DRAIN_S": "1",
    }
    names: dict[str, str] = {}
    try:
        stack.spawn("gateway", [sys.executable, "-m", "services.gateway"], env)
        for label, port in ports.items():
            name = f"pair-{label}-{port}"
            names[name] = label
            child = env | {"MEDIA_PORT": str(port), "REPLICA_NAME": name}
            stack.spawn(label, [sys.executable, "-m", "services.media"], child)
        wait_http(f"http://127.0.0.1:{gateway_port}/healthz", stack)
        for port in ports.values():
            wait_http(f"http://127.0.0.1:{port}/healthz", stack)
        yield MediaPair(stack, proxy, gateway_port, names)
    finally:
        stack.stop()
        proxy.stop()


async def wait_for_log(
    log: CallLog, call_sid: str, ready: type[ev.Event] | None = None, timeout_s: float = 30
) -> list[tuple[str, ev.Event]]:
    """Poll the call's log (bounded) until an event of type `ready` is in it."""
    deadline = time.monotonic() + timeout_s
    while True:
        entries = await log.entries(call_sid)
        if ready is None or any(isinstance(e, ready) for _, e in entries):
            return entries
        assert time.monotonic() < deadline, f"no {ready} in the log of {call_sid}"
        await asyncio.sleep(0.02)


def serving_replica(entries: list[tuple[str, ev.Event]]) -> str:
    """The replica of the call's latest stream."""
    streams = [e for _, e in entries if isinstance(e, ev.StreamStarted)]
    assert streams, "no stream started"
    return streams[-1].replica
