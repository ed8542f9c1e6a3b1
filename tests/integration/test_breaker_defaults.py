"""The default breaker against the real fault server: a dead host opens fast and is not
hammered; a few failing calls on one path never block the host's healthy paths.

The client runs on a FakeClock (its one clock: backoff waits advance it, nothing else
does), so the 5 s open time cannot run out during a test, whatever the machine's speed.
"""

from __future__ import annotations

import socket

import pytest

from flext_api import ClientConfig, ErrorCode
from flext_api.client import FlextApiClient
from flext_api.client.plugins import CircuitBreakerPlugin
from flext_api.resilience import BreakerState
from flext_api.testing import FakeClock
from tests.servers.fault import FaultServer

pytestmark = pytest.mark.integration


def _dead_url() -> str:
    """A local port nobody listens on: every connection attempt is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _state(client: FlextApiClient, key: str) -> BreakerState:
    plugin = client.plugins.get(CircuitBreakerPlugin.name)
    assert isinstance(plugin, CircuitBreakerPlugin)
    breaker = plugin.registry.peek(key)
    assert breaker is not None
    return breaker.state


async def test_a_dead_host_opens_after_five_refused_connections() -> None:
    """200 GETs to a refused port make 5 connection attempts (4 for the first GET, 1 for
    the second), then the breaker is open and the other 198 calls never touch the host."""
    url = _dead_url()
    async with FlextApiClient(url, config=ClientConfig(), clock=FakeClock()) as client:
        results = [await client.get("/items") for _ in range(200)]
        attempts = client.stats()["attempts"]
        state = _state(client, url.removeprefix("http://"))
    assert attempts == 5
    assert [r.error_code for r in results[:1]] == [ErrorCode.RETRIES_EXHAUSTED]
    assert results[1].error_code is ErrorCode.CIRCUIT_OPEN
    assert {r.error_code for r in results[2:]} == {ErrorCode.CIRCUIT_OPEN}
    assert state is BreakerState.OPEN


async def test_failing_calls_on_one_path_do_not_block_healthy_paths(
    fault: FaultServer,
) -> None:
    """Five GETs to a path that answers 500 are each retried in full (20 attempts), and
    the host's healthy path still answers: the breaker stays closed."""
    async with FlextApiClient(fault.url, config=ClientConfig(), clock=FakeClock()) as client:
        failing = [await client.get("/status/500") for _ in range(5)]
        healthy = await client.get("/status/200")
        state = _state(client, f"127.0.0.1:{fault.port}")
    assert {r.error_code for r in failing} == {ErrorCode.RETRIES_EXHAUSTED}
    assert fault.hits("/status/500") == 20
    assert healthy.is_success
    assert state is BreakerState.CLOSED
