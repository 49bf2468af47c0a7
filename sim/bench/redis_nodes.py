"""The bench's view of Redis as one server or a Cluster: every master's INFO commandstats
summed, and each master's pid for the sampler ("redis", "redis-1", ...)."""

from __future__ import annotations

from typing import Any

from redis.cluster import RedisCluster

from shared.bus.streams import connect


def node_urls(url: str, cluster: bool) -> list[str]:
    """The URL of every master (just `url` without a cluster)."""
    if not cluster:
        return [url]
    client = RedisCluster.from_url(url)
    try:
        return [
            f"redis://{node.host}:{node.port}/0"
            for node in client.get_nodes()
            if node.server_type == "primary"
        ]
    finally:
        client.close()


async def command_counts(url: str, cluster: bool) -> dict[str, int]:
    """Commands served so far, by name, summed over the masters."""
    total: dict[str, int] = {}
    for node in node_urls(url, cluster):
        redis = connect(node)
        try:
            stats: Any = await redis.info("commandstats")
        finally:
            await redis.aclose()
        for key, value in stats.items():
            name = key.removeprefix("cmdstat_")
            total[name] = total.get(name, 0) + int(value["calls"])
    return total


async def server_pids(url: str, cluster: bool) -> dict[str, int]:
    """{"redis": pid, "redis-1": pid, ...}: the masters' processes (when on this host)."""
    out: dict[str, int] = {}
    for i, node in enumerate(node_urls(url, cluster)):
        redis = connect(node)
        try:
            info: Any = await redis.info("server")
        finally:
            await redis.aclose()
        out["redis" if i == 0 else f"redis-{i}"] = int(info["process_id"])
    return out
