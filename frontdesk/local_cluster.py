"""A throwaway local Redis Cluster: N masters from Debian's `redis-server`, on loopback.

Used by `frontdesk up --redis-cluster` and the cluster test suite (tests/cluster). Each node
runs in its own temporary directory with persistence off; `redis-cli --cluster create` splits
the 16384 slots between them; `stop()` ends the processes this module started (by pid) and
removes the directories.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import redis

CLUSTER_BUS_OFFSET = 10000
"""Redis Cluster's node-to-node bus listens on the client port + 10000."""
INSTALL_HINT = "apt-get install redis-server (Debian's package has redis-server and redis-cli)"


class ClusterUnavailable(RuntimeError):
    """`redis-server` / `redis-cli` are missing, or the cluster did not form."""


@dataclass
class LocalCluster:
    """A running cluster; `url` names its first node (the client discovers the others)."""

    ports: list[int]
    directory: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A REDIS_URL for REDIS_CLUSTER=true clients."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def client(self, port: int) -> redis.Redis:
        """A plain (non-cluster) client of one node, for checks on that node alone."""
        return redis.Redis(port=port, decode_responses=True, socket_timeout=5)

    def stop(self) -> None:
        """Stop every node this process started and remove their directories."""
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.processes.clear()
        shutil.rmtree(self.directory, ignore_errors=True)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_ports(count: int) -> list[int]:
    """`count` ports whose cluster-bus ports (+10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 55000 - CLUSTER_BUS_OFFSET)
        if port in ports or not (_port_free(port) and _port_free(port + CLUSTER_BUS_OFFSET)):
            continue
        ports.append(port)
    return ports


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ClusterUnavailable(f"{name} not found: {INSTALL_HINT}")
    return path


def _wait_until(check: Callable[[], object], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():
                return
        time.sleep(0.05)
    raise ClusterUnavailable(f"timed out waiting for {what}")


def _state_ok(node: redis.Redis) -> bool:
    info: Any = node.cluster("info")
    return bool(info.get("cluster_state") == "ok")


def start_cluster(masters: int = 3, node_timeout_ms: int = 5000) -> LocalCluster:
    """Start `masters` nodes on free loopback ports, join them, wait for cluster_state:ok."""
    server, cli = _binary("redis-server"), _binary("redis-cli")
    directory = Path(tempfile.mkdtemp(prefix="frontdesk-redis-cluster-"))
    cluster = LocalCluster(ports=free_cluster_ports(masters), directory=directory)
    try:
        for port in cluster.ports:
            node_dir = directory / str(port)
            node_dir.mkdir()
            log = (node_dir / "redis.log").open("wb")
            cluster.processes.append(
                subprocess.Popen(
                    [
                        server,
                        "--port", str(port),
                        "--bind", "127.0.0.1",
                        "--dir", str(node_dir),
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", "nodes.conf",
                        "--cluster-node-timeout", str(node_timeout_ms),
                        "--save", "",
                        "--appendonly", "no",
                        "--daemonize", "no",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        for port in cluster.ports:
            _wait_until(cluster.client(port).ping, f"redis node {port}", 20)
        nodes = [f"127.0.0.1:{p}" for p in cluster.ports]
        create = subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if create.returncode != 0:
            raise ClusterUnavailable(f"redis-cli --cluster create failed: {create.stdout!r}")
        for port in cluster.ports:
            _wait_until(partial(_state_ok, cluster.client(port)), f"cluster_state:ok on {port}", 30)
    except BaseException:
        cluster.stop()
        raise
    return cluster
