"""One clock per client: stages without a clock run on the client's; two clocks are refused."""

from __future__ import annotations

import asyncio

import pytest

from flext_api import (
    BulkheadConfig,
    ErrorCode,
    FlextApiError,
    HttpRequest,
    HttpResponse,
    RateLimitConfig,
    RetryConfig,
)
from flext_api.client import FlextApiClient
from flext_api.client.plugins import BulkheadPlugin, RateLimitPlugin, RetryPlugin
from flext_api.testing import FakeClock
from flext_api.transports._mock import MockTransport

RETRY = RetryConfig(max_retries=2, budget_ratio=None, seed=1)


def _flaky() -> MockTransport:
    codes = iter([503, 503, 200])
    return MockTransport(lambda r: HttpResponse(next(codes)))


async def test_a_plugin_without_a_clock_runs_on_the_clients() -> None:
    """A RetryPlugin built without a clock sleeps its backoff on the client's clock."""
    clock = FakeClock()
    client = FlextApiClient(
        "http://api.test", transport=_flaky(), plugins=[RetryPlugin(RETRY)], clock=clock
    )
    async with client:
        result = await client.get("/x")
    assert result.is_success
    assert len(clock.sleeps) == 2


async def test_a_client_without_a_clock_runs_on_its_plugins_clock() -> None:
    """The client adopts the one clock its plugins were given: the deadline is set on it."""
    clock = FakeClock(start=5.0)
    client = FlextApiClient(
        "http://api.test", transport=_flaky(), plugins=[RetryPlugin(RETRY, clock=clock)]
    )
    assert client.clock is clock
    request = client.build_request("GET", "/x")
    assert request.deadline == pytest.approx(5.0 + 60.0)
    async with client:
        assert (await client.get("/x")).is_success


def test_two_clocks_in_one_client_are_a_config_error() -> None:
    """A plugin on one clock and the client on another is refused, naming both."""
    match = r"retry runs on <FakeClock t=1\.000> but the client on <FakeClock t=2\.000>"
    with pytest.raises(FlextApiError, match=match) as caught:
        FlextApiClient(
            "http://api.test",
            transport=MockTransport(lambda r: HttpResponse(200)),
            plugins=[RetryPlugin(RETRY, clock=FakeClock(start=1.0))],
            clock=FakeClock(start=2.0),
        )
    assert caught.value.code is ErrorCode.CONFIG_ERROR


def test_plugins_on_two_different_clocks_are_a_config_error() -> None:
    """Two plugins given different clocks cannot share one client."""
    with pytest.raises(FlextApiError, match="a client runs on one clock") as caught:
        FlextApiClient(
            "http://api.test",
            transport=MockTransport(lambda r: HttpResponse(200)),
            plugins=[RetryPlugin(RETRY, clock=FakeClock()), RateLimitPlugin(clock=FakeClock())],
        )
    assert caught.value.code is ErrorCode.CONFIG_ERROR


async def test_an_owned_limiter_is_rebuilt_on_the_clients_clock() -> None:
    """A RateLimitPlugin's own limiter waits on the client's clock, within its deadline."""
    clock = FakeClock()
    limit = RateLimitPlugin(RateLimitConfig(enabled=True, rate=1.0, burst=1))
    client = FlextApiClient(
        "http://api.test",
        transport=MockTransport(lambda r: HttpResponse(200)),
        plugins=[limit],
        clock=clock,
    )
    async with client:
        for _ in range(3):
            assert (await client.get("/x")).is_success
    assert clock.sleeps == [pytest.approx(1.0), pytest.approx(1.0)]


async def test_an_owned_bulkhead_is_rebuilt_on_the_clients_clock() -> None:
    """A BulkheadPlugin's own bulkhead queues until the deadline on the client's clock."""
    clock = FakeClock()
    gate = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        await gate.wait()
        return HttpResponse(200)

    bulkhead = BulkheadPlugin(BulkheadConfig(enabled=True, max_concurrent=1, max_queue=1))
    client = FlextApiClient(
        "http://api.test", transport=MockTransport(handler), plugins=[bulkhead], clock=clock
    )
    async with client:
        first = asyncio.ensure_future(client.get("/x"))
        await asyncio.sleep(0)
        queued = await client.get("/x")
        gate.set()
        assert (await first).is_success
    assert queued.error_code is ErrorCode.BULKHEAD_FULL
    assert clock.sleeps == [pytest.approx(60.0)]
