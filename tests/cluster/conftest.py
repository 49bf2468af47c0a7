"""The platform on a real 3-master Redis Cluster (frontdesk.local_cluster), for the tests in
this folder: `infra` and `platform` are overridden here, so e2e tests imported from tests/e2e
run unchanged against the cluster (REDIS_CLUSTER=true in every service).

Every test here fails if any command crossed hash slots: the nodes count CROSSSLOT refusals
(`INFO errorstats`), and redis-py's cluster client refuses such a command before sending it
("all keys must map to the same key slot"), which the services would log.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontdesk.local_cluster import LocalCluster, start_cluster
from shared.runtime.embedded import Embedded, ensure
from tests.conftest import Infra, Platform, migrated_database, running_platform, server_dir
from tests.otlp_receiver import RunningReceiver

CROSS_SLOT = re.compile(r"CROSSSLOT|same key slot|ClusterCrossSlotError")
"""What a command over keys of several slots leaves in a service's log."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "crosses_slots_on_purpose: a test that sends a cross-slot command itself"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """One cluster and one platform per run: all of this folder on one xdist worker."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.xdist_group("redis-cluster"))


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    cluster = start_cluster(masters=3)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def infra(redis_cluster: LocalCluster) -> Iterator[Infra]:
    directory = server_dir("frontdesk-cluster-test-")
    embedded: Embedded = ensure(redis_cluster.url, os.environ.get("DATABASE_URL"), str(directory))
    try:
        with migrated_database(embedded.database_url) as database_url:
            yield Infra(redis_url=redis_cluster.url, database_url=database_url, cluster=True)
    finally:
        embedded.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def platform(
    infra: Infra, otlp: RunningReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    with running_platform(infra, otlp, tmp_path_factory.mktemp("cluster-logs")) as running:
        yield running


def cross_slot_refusals(cluster: LocalCluster) -> int:
    """CROSSSLOT errors the nodes answered so far."""
    total = 0
    for port in cluster.ports:
        stats = cluster.client(port).info("errorstats")
        total += int(stats.get("errorstat_CROSSSLOT", {}).get("count", 0))
    return total


def cross_slot_lines(root: Path) -> list[str]:
    """Log lines under `root` (every stack's logs of this test session) that name a
    cross-slot refusal."""
    found: list[str] = []
    for log in root.rglob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if CROSS_SLOT.search(line):
                found.append(f"{log.name}: {line[:300]}")
    return found


@pytest.fixture(autouse=True)
def no_command_crosses_slots(
    request: pytest.FixtureRequest,
    redis_cluster: LocalCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """After each test: no node refused a CROSSSLOT command, no service logged a refusal."""
    before = cross_slot_refusals(redis_cluster)
    yield
    if request.node.get_closest_marker("crosses_slots_on_purpose"):
        return
    assert cross_slot_refusals(redis_cluster) == before, "a command crossed hash slots"
    lines = cross_slot_lines(tmp_path_factory.getbasetemp())
    assert not lines, "a service sent a command across hash slots:\n" + "\n".join(lines)
