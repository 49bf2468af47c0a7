"""Fault tests: the platform's parts against servers that go away and come back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import server_dir
from tests.faults.redis_server import OwnRedis


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis(server_dir("frontdesk-redis-"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
