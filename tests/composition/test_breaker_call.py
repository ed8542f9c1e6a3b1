"""CircuitBreaker.call and CircuitConfig: the seed's breaker over the sans-IO state machine."""

from __future__ import annotations

import asyncio

import pytest

from flext_api import CircuitBreaker, CircuitConfig, ErrorCode, FlextResult
from flext_api._errors import CircuitOpenError
from flext_api.resilience import BreakerState
from flext_api.testing import FakeClock


class ServiceError(Exception):
    """What the seed's external_service raises."""


async def failing() -> str:
    raise ServiceError("Service error")


def breaker(clock: FakeClock, **kwargs: float) -> CircuitBreaker:
    config = CircuitConfig(
        failure_threshold=int(kwargs.get("failure_threshold", 2)),
        recovery_timeout=kwargs.get("recovery_timeout", 60.0),
        half_open_calls=int(kwargs.get("half_open_calls", 2)),
    )
    return CircuitBreaker(config, clock=clock)


async def test_seed_route_returns_result_or_503_body() -> None:
    """The seed's route: the result while closed; the error text once it is open."""

    async def external_service() -> str:
        await asyncio.sleep(0)
        return "success"

    cb = CircuitBreaker()
    try:
        result = await cb.call(external_service)
        body = {"result": result}
    except Exception as e:
        body = {"error": str(e)}
    assert body == {"result": "success"}


async def test_call_returns_sync_and_async_results() -> None:
    """call() awaits async functions and calls sync ones, passing args and kwargs."""
    cb = breaker(FakeClock())

    async def add(a: int, *, b: int) -> int:
        return a + b

    assert await cb.call(add, 1, b=2) == 3
    assert await cb.call(lambda a, b: a * b, 3, 4) == 12


async def test_failures_reraise_and_open_after_threshold() -> None:
    """Each failure re-raises; failure_threshold in a row opens the breaker."""
    cb = breaker(FakeClock(), failure_threshold=2)
    for _ in range(2):
        with pytest.raises(ServiceError):
            await cb.call(failing)
    assert cb.state is BreakerState.OPEN
    assert cb.failures == 2


async def test_open_breaker_refuses_without_calling() -> None:
    """While open, call() raises CIRCUIT_OPEN with retry_after and never calls func."""
    clock = FakeClock()
    cb = breaker(clock, failure_threshold=1, recovery_timeout=60)
    with pytest.raises(ServiceError):
        await cb.call(failing)
    calls: list[int] = []
    clock.advance(10)
    with pytest.raises(CircuitOpenError) as info:
        await cb.call(lambda: calls.append(1))
    assert info.value.code is ErrorCode.CIRCUIT_OPEN
    assert info.value.retry_after == pytest.approx(50)
    assert calls == []


async def test_half_open_closes_after_half_open_calls_successes() -> None:
    """After recovery_timeout, half_open_calls successful trials close it again."""
    clock = FakeClock()
    cb = breaker(clock, failure_threshold=1, recovery_timeout=5, half_open_calls=2)
    with pytest.raises(ServiceError):
        await cb.call(failing)
    clock.advance(5)
    states = []
    for _ in range(2):
        assert await cb.call(lambda: "ok") == "ok"
        states.append(cb.state)
    assert states == [BreakerState.HALF_OPEN, BreakerState.CLOSED]


async def test_half_open_failure_reopens() -> None:
    """A failing trial call sends the breaker straight back to open."""
    clock = FakeClock()
    cb = breaker(clock, failure_threshold=1, recovery_timeout=5)
    with pytest.raises(ServiceError):
        await cb.call(failing)
    clock.advance(5)
    with pytest.raises(ServiceError):
        await cb.call(failing)
    assert cb.state is BreakerState.OPEN


async def test_success_resets_consecutive_failures() -> None:
    """A success between failures keeps the breaker closed (failures are consecutive)."""
    cb = breaker(FakeClock(), failure_threshold=2)
    with pytest.raises(ServiceError):
        await cb.call(failing)
    assert cb.failures == 1
    await cb.call(lambda: None)
    with pytest.raises(ServiceError):
        await cb.call(failing)
    assert cb.state is BreakerState.CLOSED


async def test_cancelled_call_is_not_counted() -> None:
    """A cancelled call leaves the failure count untouched."""
    cb = breaker(FakeClock(), failure_threshold=1)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(cb.call(hang))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cb.state is BreakerState.CLOSED and cb.failures == 0


async def test_call_result_wraps_errors_as_failures() -> None:
    """call_result() returns the value as a success and an error as a failure."""
    cb = breaker(FakeClock(), failure_threshold=5)
    ok = await cb.call_result(lambda: 7)
    failed = await cb.call_result(failing)
    assert ok.value == 7
    assert failed.is_failure and isinstance(failed.exception.__cause__, ServiceError)  # type: ignore[union-attr]


async def test_call_result_counts_a_failed_result() -> None:
    """A func returning a failed FlextResult counts as a failure and is returned as such."""
    cb = breaker(FakeClock(), failure_threshold=1)
    result = await cb.call_result(lambda: FlextResult.fail("nope", code=ErrorCode.HTTP_STATUS))
    assert result.error_code is ErrorCode.HTTP_STATUS
    assert cb.state is BreakerState.OPEN


@pytest.mark.parametrize(
    ("field", "value"),
    [("failure_threshold", 0), ("recovery_timeout", 0.0), ("half_open_calls", 0)],
)
def test_circuit_config_rejects_out_of_range(field: str, value: float) -> None:
    """CircuitConfig refuses a non-positive setting, naming it."""
    with pytest.raises(ValueError, match=field):
        CircuitConfig(**{field: value})  # type: ignore[arg-type]


def test_circuit_config_maps_to_breaker_config() -> None:
    """The seed's numbers become a breaker with a fixed open time and no jitter."""
    config = CircuitConfig(failure_threshold=5, recovery_timeout=60.0, half_open_calls=3)
    mapped = config.to_breaker_config()
    assert (mapped.consecutive_failures, mapped.open_duration, mapped.half_open_calls) == (
        5,
        60.0,
        3,
    )
    assert (mapped.open_jitter, mapped.open_duration_multiplier) == (0.0, 1.0)
