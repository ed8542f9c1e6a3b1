"""A request whose deadline passed before it was sent says nothing of its host.

Every transport refuses to send such a request (``DEADLINE_EXCEEDED``, reason
``not_sent``); the breaker used to count it as a transport failure of the host, so
callers running out of time opened a healthy host's breaker, or spent a half-open
breaker's probes without a single byte reaching the host.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flext_api import BreakerConfig, ErrorCode, FlextApiError, FlextResult, HttpResponse
from flext_api._errors import NOT_SENT
from flext_api._models import HttpRequest
from flext_api.client.plugins import CircuitBreakerPlugin, counts_as_failure
from flext_api.resilience import BreakerState
from flext_api.testing import FakeClock
from flext_api.transports import AiohttpTransport, H1Transport, HttpxTransport, Transport

from ._fakes import Upstream

# Nothing listens there; nothing is ever sent to it either.
URL = "http://127.0.0.1:9/items"
TRANSPORTS: list[Callable[[FakeClock], Transport]] = [
    lambda clock: H1Transport(clock=clock),
    lambda clock: AiohttpTransport(clock=clock),
    lambda clock: HttpxTransport(clock=clock),
]


async def _send(transport: Transport, request: HttpRequest) -> FlextResult[HttpResponse]:
    try:
        return FlextResult.ok(await transport.send(request))
    except FlextApiError as exc:
        return FlextResult.fail(exc)


@pytest.mark.parametrize("make", TRANSPORTS, ids=["h1", "aiohttp", "httpx"])
async def test_every_transport_marks_a_request_it_never_sent(
    make: Callable[[FakeClock], Transport],
) -> None:
    clock = FakeClock(start=100.0)
    transport = make(clock)
    try:
        result = await _send(transport, HttpRequest("GET", URL, deadline=99.0))
    finally:
        await transport.aclose()
    error = result.exception
    assert error is not None and error.code is ErrorCode.DEADLINE_EXCEEDED
    assert error.details["reason"] == NOT_SENT
    assert counts_as_failure(result) is None


async def test_requests_never_sent_leave_the_breaker_closed() -> None:
    clock = FakeClock(start=100.0)
    # Ten failures of ten calls would open it (as a ratio of at least five calls).
    config = BreakerConfig(open_jitter=0.0, minimum_calls=5, failure_ratio=0.5)
    breaker = CircuitBreakerPlugin(config, clock=clock)
    transport = H1Transport(clock=clock)
    try:
        for _ in range(10):
            request = HttpRequest("GET", URL, deadline=99.0)
            result = await breaker.handle(request, lambda r: _send(transport, r))
            assert result.error_code is ErrorCode.DEADLINE_EXCEEDED
    finally:
        await transport.aclose()
    found = breaker.registry.peek("127.0.0.1:9")
    assert found is not None and found.state is BreakerState.CLOSED


async def test_a_half_open_breakers_probes_are_not_spent_on_them() -> None:
    clock = FakeClock(start=100.0)
    config = BreakerConfig(open_jitter=0.0)
    breaker = CircuitBreakerPlugin(config, clock=clock)
    down = Upstream([ErrorCode.CONNECT_ERROR])
    for _ in range(config.consecutive_failures):
        await breaker.handle(HttpRequest("GET", URL), down)
    clock.advance(config.open_duration)  # half-open: a few probes may go
    transport = H1Transport(clock=clock)
    try:
        for _ in range(config.half_open_calls + 2):
            request = HttpRequest("GET", URL, deadline=clock.monotonic() - 1)
            result = await breaker.handle(request, lambda r: _send(transport, r))
            assert result.error_code is ErrorCode.DEADLINE_EXCEEDED  # not CIRCUIT_OPEN
    finally:
        await transport.aclose()
    healthy = Upstream([200])
    assert (await breaker.handle(HttpRequest("GET", URL), healthy)).is_success
