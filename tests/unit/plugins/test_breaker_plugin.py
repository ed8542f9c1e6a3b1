"""CircuitBreakerPlugin: per-host breakers fed by each attempt's outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flext_api import BreakerConfig, ErrorCode, FlextApiError, FlextResult, HttpResponse
from flext_api.client.plugins import CircuitBreakerPlugin, counts_as_failure, is_host_down
from flext_api.resilience import (
    BreakerRegistry,
    BreakerRejected,
    BreakerState,
    ResilienceEvent,
)
from flext_api.testing import FakeClock

from ._fakes import Upstream, error, get, ok, status_failure

CONFIG = BreakerConfig(open_jitter=0.0)


def plugin(config: BreakerConfig = CONFIG, **kwargs: Any) -> CircuitBreakerPlugin:
    return CircuitBreakerPlugin(config, clock=FakeClock(start=0.0), **kwargs)


def state(breaker_plugin: CircuitBreakerPlugin, key: str = "api.example.com") -> BreakerState:
    breaker = breaker_plugin.registry.peek(key)
    assert breaker is not None
    return breaker.state


async def test_successes_keep_the_breaker_closed() -> None:
    """200s pass through and leave the host's breaker closed."""
    breaker = plugin()
    upstream = Upstream([200])
    for _ in range(10):
        assert (await breaker.handle(get(), upstream)).is_success
    assert state(breaker) is BreakerState.CLOSED


async def test_open_breaker_refuses_without_calling() -> None:
    """After 5 connect errors the next call is CIRCUIT_OPEN with retry_after, not sent."""
    breaker = plugin()
    upstream = Upstream([ErrorCode.CONNECT_ERROR])
    for _ in range(5):
        await breaker.handle(get(), upstream)
    result = await breaker.handle(get(), upstream)
    assert result.error_code is ErrorCode.CIRCUIT_OPEN
    assert result.exception is not None and result.exception.retry_after == 5.0
    assert "half-opens in 5s" in (result.error or "")
    assert upstream.calls == 5


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_client_errors_are_not_failures(status: int) -> None:
    """4xx other than 408/429 are the caller's problem: the breaker stays closed."""
    breaker = plugin()
    upstream = Upstream([status])
    for _ in range(20):
        await breaker.handle(get(), upstream)
    assert state(breaker) is BreakerState.CLOSED


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_errors_in_a_row_open_the_breaker(status: int) -> None:
    """502, 503 and 504 say the host is down: five in a row open it (Envoy's gateway errors)."""
    breaker = plugin()
    upstream = Upstream([status])
    for _ in range(5):
        await breaker.handle(get(), upstream)
    assert state(breaker) is BreakerState.OPEN


@pytest.mark.parametrize("status", [408, 429, 500])
async def test_other_server_errors_count_only_in_the_ratio(status: int) -> None:
    """408, 429 and 500 never open it as a run; they open it as a ratio of enough calls."""
    breaker = plugin(BreakerConfig(open_jitter=0.0, minimum_calls=10))
    upstream = Upstream([status])
    for _ in range(9):
        await breaker.handle(get(), upstream)
    assert state(breaker) is BreakerState.CLOSED
    await breaker.handle(get(), upstream)
    assert state(breaker) is BreakerState.OPEN


async def test_a_5xx_returned_as_a_response_is_a_failure() -> None:
    """With fail_on_http_error=False a 503 response still counts as a failure."""
    breaker = plugin()
    for _ in range(5):
        await breaker.handle(get(), Upstream([ok(503)]))
    assert state(breaker) is BreakerState.OPEN


async def test_breakers_are_per_host() -> None:
    """A failing host does not open the breaker of another host."""
    breaker = plugin()
    for _ in range(5):
        await breaker.handle(get("http://bad.example/x"), Upstream([ErrorCode.CONNECT_ERROR]))
    healthy = await breaker.handle(get("http://good.example/x"), Upstream([200]))
    assert healthy.is_success
    assert state(breaker, "bad.example") is BreakerState.OPEN


async def test_custom_key_function() -> None:
    """key= groups requests differently (here: one breaker for everything)."""
    breaker = plugin(key=lambda _request: "all")
    await breaker.handle(get("http://a.example/"), Upstream([200]))
    await breaker.handle(get("http://b.example/"), Upstream([200]))
    assert [key for key, _ in breaker.registry] == ["all"]


async def test_neutral_failures_give_the_trial_slot_back() -> None:
    """An INVALID_REQUEST during half-open does not use up a trial call."""
    breaker = plugin(BreakerConfig(open_jitter=0.0, consecutive_failures=1, half_open_calls=1))
    clock = breaker._clock
    assert isinstance(clock, FakeClock)
    await breaker.handle(get(), Upstream([ErrorCode.CONNECT_ERROR]))
    clock.advance(30.0)
    neutral = await breaker.handle(get(), Upstream([ErrorCode.INVALID_REQUEST]))
    assert neutral.error_code is ErrorCode.INVALID_REQUEST
    assert state(breaker) is BreakerState.HALF_OPEN
    trial = await breaker.handle(get(), Upstream([200]))
    assert trial.is_success and state(breaker) is BreakerState.CLOSED


async def test_a_cancelled_trial_gives_its_slot_back() -> None:
    """Cancellation during a trial call frees the slot and propagates."""
    breaker = plugin(BreakerConfig(open_jitter=0.0, consecutive_failures=1, half_open_calls=1))
    clock = breaker._clock
    assert isinstance(clock, FakeClock)
    await breaker.handle(get(), Upstream([ErrorCode.CONNECT_ERROR]))
    clock.advance(30.0)

    async def cancelled(_request: object) -> FlextResult[HttpResponse]:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await breaker.handle(get(), cancelled)
    assert (await breaker.handle(get(), Upstream([200]))).is_success


async def test_slow_calls_use_the_response_elapsed_time() -> None:
    """A response whose elapsed exceeds slow_call_duration counts as slow."""
    config = BreakerConfig(
        open_jitter=0.0, slow_call_duration=1.0, slow_call_ratio=0.5, minimum_calls=2
    )
    breaker = plugin(config)
    slow = HttpResponse(200)
    slow.elapsed = 3.0
    for _ in range(2):
        await breaker.handle(get(), Upstream([FlextResult.ok(slow)]))
    assert state(breaker) is BreakerState.OPEN


async def test_calls_without_elapsed_use_the_measured_time() -> None:
    """Without a response's elapsed time, the time spent below the plugin is the duration."""
    config = BreakerConfig(
        open_jitter=0.0,
        consecutive_failures=100,
        slow_call_duration=1.0,
        slow_call_ratio=0.5,
        minimum_calls=2,
    )
    clock = FakeClock(start=0.0)
    breaker = CircuitBreakerPlugin(config, clock=clock)
    upstream = Upstream([200], clock=clock, latency=2.0)
    for _ in range(2):
        await breaker.handle(get(), upstream)
    assert state(breaker) is BreakerState.OPEN


async def test_rejections_emit_events() -> None:
    """A refused call emits BreakerRejected with the time left."""
    events: list[ResilienceEvent] = []
    breaker = plugin(BreakerConfig(open_jitter=0.0, consecutive_failures=1), hooks=[events.append])
    await breaker.handle(get(), Upstream([ErrorCode.CONNECT_ERROR]))
    await breaker.handle(get(), Upstream([200]))
    assert events[-1] == BreakerRejected("api.example.com", "open", 5.0)


async def test_forced_open_rejection_says_so() -> None:
    """A manually opened breaker refuses with no retry_after."""
    registry = BreakerRegistry(CONFIG)
    breaker = CircuitBreakerPlugin(registry=registry, clock=FakeClock())
    registry.get("api.example.com", 0.0).force_open()
    result = await breaker.handle(get(), Upstream([200]))
    assert result.error_code is ErrorCode.CIRCUIT_OPEN
    assert result.exception is not None and result.exception.retry_after is None
    assert "forced_open and admits no more calls" in (result.error or "")


async def test_disabled_config_passes_through() -> None:
    """BreakerConfig(enabled=False) never refuses and never records."""
    breaker = plugin(BreakerConfig(enabled=False))
    upstream = Upstream([ErrorCode.CONNECT_ERROR])
    for _ in range(10):
        await breaker.handle(get(), upstream)
    assert upstream.calls == 10 and len(breaker.registry) == 0


def test_config_and_a_different_registry_conflict() -> None:
    """Passing a config and a registry built from another config is a ValueError."""
    with pytest.raises(ValueError, match="either config or a registry"):
        CircuitBreakerPlugin(BreakerConfig(window=5.0), registry=BreakerRegistry())
    shared = BreakerRegistry()
    assert CircuitBreakerPlugin(registry=shared).registry is shared
    assert repr(CircuitBreakerPlugin(registry=shared)) == (
        "<CircuitBreakerPlugin <BreakerRegistry [empty]>>"
    )


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (ok(200), False),
        (ok(404), False),
        (ok(502), True),
        (status_failure(429), True),
        (status_failure(404), False),
        (error(ErrorCode.READ_TIMEOUT), True),
        (error(ErrorCode.HTTP_STATUS), True),
        (error(ErrorCode.AUTH_ERROR), None),
        (FlextResult.fail(FlextApiError.from_code(ErrorCode.RATE_LIMITED, "local")), None),
    ],
)
def test_counts_as_failure(result: FlextResult[HttpResponse], expected: bool | None) -> None:
    """What counts against a host: transport errors, 5xx, 408, 429; nothing else."""
    assert counts_as_failure(result) is expected


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (ok(502), True),
        (ok(504), True),
        (status_failure(503), True),
        (ok(500), False),
        (status_failure(500), False),
        (error(ErrorCode.CONNECT_ERROR), True),
        (error(ErrorCode.CONNECT_TIMEOUT), True),
        (error(ErrorCode.DNS_ERROR), True),
        (error(ErrorCode.PROTOCOL_ERROR), True),
        (error(ErrorCode.READ_TIMEOUT), False),
        (error(ErrorCode.HTTP_STATUS), False),
    ],
)
def test_is_host_down(result: FlextResult[HttpResponse], expected: bool) -> None:
    """Host-down failures: unreachable, a broken connection, or a gateway error (502-504)."""
    assert is_host_down(result) is expected


async def test_a_timed_success_is_counted_at_its_start_plus_elapsed() -> None:
    """A success the transport timed lands in the window at start + elapsed, read once."""
    clock = FakeClock(start=100.0)
    breaker = CircuitBreakerPlugin(CONFIG, clock=clock)
    timed = HttpResponse(200)
    timed.elapsed = 0.25
    result = await breaker.handle(get(), Upstream([FlextResult.ok(timed)]))
    assert result.is_success
    found = breaker.registry.peek("api.example.com")
    assert found is not None
    assert found.failure_stats == (1, 0, 0)


@pytest.mark.parametrize(
    "spellings",
    [
        ("http://api.example.com/a", "http://API.Example.COM./b"),
        ("http://api.example.com/a", "http://user:pw@api.example.com:80/b"),
        ("https://api.example.com/a", "https://api.example.com:443/b"),
        ("http://api.example.com:8080/a", "http://api.example.com:08080/b"),
        ("http://[::1]:8080/a", "http://[0:0:0:0:0:0:0:1]:8080/b"),
    ],
)
async def test_two_spellings_of_one_host_share_one_breaker(spellings: tuple[str, str]) -> None:
    """Failures through one spelling of a host open the breaker for every spelling."""
    first, second = spellings
    breaker = plugin()
    upstream = Upstream([ErrorCode.CONNECT_ERROR])
    for _ in range(5):
        await breaker.handle(get(first), upstream)
    result = await breaker.handle(get(second), upstream)
    assert result.error_code is ErrorCode.CIRCUIT_OPEN
    assert upstream.calls == 5
    assert len(breaker.registry) == 1


async def test_other_ports_and_hosts_keep_their_own_breakers() -> None:
    """A non-default port or another host is another breaker, whatever the spelling."""
    breaker = plugin()
    upstream = Upstream([ErrorCode.CONNECT_ERROR])
    for _ in range(5):
        await breaker.handle(get("http://api.example.com/a"), upstream)
    for url in ("http://api.example.com:8080/", "http://example.com/", "http://[::2]/"):
        result = await breaker.handle(get(url), Upstream([200]))
        assert result.is_success, url
