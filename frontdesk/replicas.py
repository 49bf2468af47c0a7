"""N replicas of each service on one host, gateways and media behind HAProxy.

`frontdesk up --replicas media=3,gateway=2,brain=2,tools=2,recorder=2`, the bench's
`--replicas` and the tests start the same layout through `start_replicated`: each gateway and
media replica on a port of its own, HAProxy on the stack's public gateway and media ports (the
ones `PUBLIC_GATEWAY_URL` / `PUBLIC_MEDIA_WS_URL` name), workers with a metrics port each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from frontdesk.balancer import BalancerLayout, start_haproxy, wait_states
from frontdesk.supervisor import SERVICES, Stack, free_port, replica_label, start_services

BALANCED = ("gateway", "media")
MAX_REPLICAS = 16


def parse_replicas(spec: str) -> dict[str, int]:
    """`media=3,gateway=2` -> {"media": 3, "gateway": 2}; ValueError with a message if bad."""
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in SERVICES:
            raise ValueError(
                f"--replicas: expected SERVICE=N with SERVICE one of {', '.join(SERVICES)};"
                f" got {part!r}"
            )
        try:
            count = int(value)
        except ValueError:
            raise ValueError(f"--replicas: {name}={value!r} is not a number") from None
        if not 1 <= count <= MAX_REPLICAS:
            raise ValueError(f"--replicas: {name} must be between 1 and {MAX_REPLICAS}")
        if name in counts:
            raise ValueError(f"--replicas: {name} given twice")
        counts[name] = count
    return counts


@dataclass
class Replicated:
    """A running replicated layout: which process label listens where, and the balancer."""

    layout: BalancerLayout
    config: Path

    def port_of(self, label: str) -> int:
        """The port of one gateway or media replica (by label: media, media-1, ...)."""
        for ports in self.layout.replicas.values():
            if label in ports:
                return ports[label]
        raise KeyError(label)

    def server(self, label: str) -> str:
        """HAProxy's name for a replica's server ("media_replicas/media-1")."""
        service = label.split("-")[0]
        return f"{service}_replicas/{label}"


def start_replicated(
    stack: Stack,
    env: dict[str, str],
    replicas: Mapping[str, int],
    run_dir: Path,
    check_ms: int = 1000,
    replica_env: Mapping[str, Mapping[str, str]] | None = None,
) -> Replicated:
    """Start every service with its replica count (1 when not given; 0: none, as in tests that
    share a platform's workers) and HAProxy in front of gateway and media; returns once HAProxy
    sees every replica UP. `replica_env` adds variables to one replica (by label)."""
    ports = {
        service: {replica_label(service, i): free_port() for i in range(replicas.get(service, 1))}
        for service in BALANCED
    }
    layout = BalancerLayout(
        listen={service: stack.ports.metrics_port(service) for service in BALANCED},
        replicas=ports,
        stats_port=stack.ports.balancer_stats,
        check_ms=check_ms,
    )
    http_ports = {label: port for by_label in ports.values() for label, port in by_label.items()}
    start_services(stack, env, replicas, http_ports, replica_env)
    config = start_haproxy(stack, layout, run_dir)
    up = {f"{service}_replicas/{label}": "UP" for service in BALANCED for label in ports[service]}
    wait_states(stack, layout.stats_port, up)
    return Replicated(layout, config)
