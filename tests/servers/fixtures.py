"""Session-scoped pytest fixtures for the local test servers (127.0.0.1 only).

Each server starts the first time a test asks for it and stops at session end.
Registered through ``pytest_plugins`` in ``tests/conftest.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.servers.fault import FaultServer
from tests.servers.h2_server import H2Server
from tests.servers.httpbin_server import HttpbinServer
from tests.servers.redis_server import RedisServer, redis_server_binary

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def fault_server() -> Iterator[FaultServer]:
    """The shared fault server; prefer ``fault``, which resets it per test."""
    with FaultServer() as server:
        yield server


@pytest.fixture
def fault(fault_server: FaultServer) -> Iterator[FaultServer]:
    """The session fault server, reset (records, counters, errors) for this test."""
    fault_server.reset()
    yield fault_server
    errors = fault_server.errors
    if errors:
        pytest.fail(f"fault server handler crashed: {errors!r}", pytrace=False)


@pytest.fixture(scope="session")
def httpbin_server() -> Iterator[HttpbinServer]:
    """The ``httpbin`` Flask app on a random port."""
    with HttpbinServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A throw-away ``redis-server`` process (skipped locally / failed in CI if missing)."""
    with RedisServer(redis_server_binary()) as server:
        yield server


@pytest.fixture(scope="session")
def h2_server() -> Iterator[H2Server]:
    """hypercorn over TLS with HTTP/2 (ALPN h2) and a trustme CA."""
    with H2Server() as server:
        yield server
