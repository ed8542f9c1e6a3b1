"""Three real upstream instances of one service, for the discovery integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.etcd_server import EtcdServer
from tests.servers.redis_server import RedisServer

from .upstream import Upstream


@pytest.fixture
def upstreams() -> Iterator[list[Upstream]]:
    """Three running instances (``a``, ``b``, ``c``), stopped after the test."""
    servers = [Upstream(name).start() for name in ("a", "b", "c")]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own (it may be stopped and restarted)."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdServer]:
    """A real etcd shared by the module's tests (each test uses its own key prefix)."""
    with EtcdServer() as server:
        yield server


@pytest.fixture
def own_etcd() -> Iterator[EtcdServer]:
    """An etcd of this test's own (it may be stopped and restarted)."""
    with EtcdServer() as server:
        yield server
