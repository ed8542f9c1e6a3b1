"""ChaosPlugin: injected errors, latency and synthetic throttling responses."""

from __future__ import annotations

import pytest

from flext_api import ErrorCode
from flext_api.client.plugins import ChaosPlugin, HedgingPlugin
from flext_api.resilience import ChaosInjected, Fault, ResilienceEvent
from flext_api.testing import FakeClock

from ._fakes import Upstream, get


async def test_no_fault_calls_through() -> None:
    """At rate 0 every call reaches the upstream untouched."""
    chaos = ChaosPlugin(0.0, seed=1)
    upstream = Upstream([200])
    assert (await chaos.handle(get(), upstream)).is_success
    assert upstream.calls == 1


async def test_error_fault_fails_without_calling() -> None:
    """An error fault returns its code, marked as chaos, and sends nothing."""
    events: list[ResilienceEvent] = []
    chaos = ChaosPlugin(1.0, [Fault.error(ErrorCode.CONNECT_ERROR)], hooks=[events.append])
    upstream = Upstream([200])
    request = get()
    result = await chaos.handle(request, upstream)
    assert result.error_code is ErrorCode.CONNECT_ERROR
    assert result.exception is not None
    assert result.exception.details == {"chaos": True}
    assert result.exception.request is request
    assert upstream.calls == 0
    assert events == [ChaosInjected("api.example.com", "error CONNECT_ERROR")]


async def test_latency_fault_sleeps_then_calls() -> None:
    """A latency fault waits on the clock, then makes the real call."""
    clock = FakeClock(start=0.0)
    chaos = ChaosPlugin(1.0, [Fault.delay(1.5)], clock=clock)
    upstream = Upstream([200])
    assert (await chaos.handle(get(), upstream)).is_success
    assert clock.sleeps == [1.5] and upstream.calls == 1


async def test_status_fault_is_an_http_status_failure_with_retry_after() -> None:
    """A 429 fault comes back as HTTP_STATUS with a Retry-After header, unsent."""
    chaos = ChaosPlugin(1.0, [Fault.response(429, retry_after=1.2)])
    upstream = Upstream([200])
    result = await chaos.handle(get(), upstream)
    assert result.error_code is ErrorCode.HTTP_STATUS
    assert result.exception is not None and result.exception.response is not None
    response = result.exception.response
    assert response.status_code == 429 and response.headers["Retry-After"] == "2"
    assert result.exception.details["chaos"] is True
    assert upstream.calls == 0


async def test_status_fault_as_a_response_when_http_errors_are_not_failures() -> None:
    """With fail_on_http_error off (plugin or request) the fault is a plain response."""
    chaos = ChaosPlugin(1.0, [Fault.response(503)], fail_on_http_error=False)
    result = await chaos.handle(get(), Upstream([200]))
    assert result.value.status_code == 503 and "retry-after" not in result.value.headers
    per_request = ChaosPlugin(1.0, [Fault.response(503)])
    request = get(extensions={"fail_on_http_error": False})
    assert (await per_request.handle(request, Upstream([200]))).is_success


async def test_successful_status_fault_is_a_response() -> None:
    """A fault with a status below 400 is returned as a success."""
    chaos = ChaosPlugin(1.0, [Fault.response(204)])
    result = await chaos.handle(get(), Upstream([200]))
    assert result.value.status_code == 204
    assert repr(chaos) == "<ChaosPlugin <ChaosPolicy rate=1 faults=1 on>>"


async def test_latency_past_the_deadline_fails_at_the_deadline() -> None:
    """Injected latency is time of the call: 5 s of it under a 1 s deadline waits until
    the deadline and fails DEADLINE_EXCEEDED, without calling the upstream."""
    clock = FakeClock(start=0.0)
    chaos = ChaosPlugin(1.0, [Fault.delay(5.0)], clock=clock)
    upstream = Upstream([200])
    result = await chaos.handle(get(deadline=1.0), upstream)
    assert result.error_code is ErrorCode.DEADLINE_EXCEEDED
    assert (clock.monotonic(), upstream.calls) == (1.0, 0)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_non_finite_fault_numbers_are_refused(value: float) -> None:
    """NaN and infinity passed the '< 0' checks and failed later as PLUGIN_ERROR."""
    with pytest.raises(ValueError, match="finite"):
        Fault.delay(value)
    with pytest.raises(ValueError, match="finite"):
        Fault.error(ErrorCode.CONNECT_ERROR, weight=value)
    with pytest.raises(ValueError, match="hedging delay"):
        HedgingPlugin(delay=value)
