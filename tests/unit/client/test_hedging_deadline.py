"""Hedging and the deadline: no hedged attempt starts at or past the request's deadline."""

from __future__ import annotations

import asyncio
import math

import pytest

from flext_api import ErrorCode, FlextApiError, FlextResult, HttpRequest, HttpResponse
from flext_api.client.plugins import HedgingPlugin
from flext_api.resilience import ResilienceEvent, hedge
from flext_api.testing import FakeClock


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


class Attempts:
    """Attempt functions that finish when the test says so."""

    def __init__(self) -> None:
        self.gates: dict[int, asyncio.Future[FlextResult[str]]] = {}
        self.started: list[int] = []

    async def __call__(self, index: int) -> FlextResult[str]:
        self.started.append(index)
        gate: asyncio.Future[FlextResult[str]] = asyncio.get_running_loop().create_future()
        self.gates[index] = gate
        return await gate

    def finish(self, index: int, result: FlextResult[str]) -> None:
        self.gates[index].set_result(result)


def failed(code: ErrorCode, message: str) -> FlextResult[str]:
    return FlextResult.fail(FlextApiError.from_code(code, message))


async def test_no_hedge_starts_when_the_delay_outlasts_the_deadline() -> None:
    """A deadline sooner than the hedge delay: attempt 0 runs alone past the delay."""
    clock = FakeClock(start=0.0, auto_advance=False)
    attempts = Attempts()
    task = asyncio.create_task(hedge(attempts, delay=1.0, deadline=0.5, clock=clock))
    await settle()
    clock.advance(2.0)
    await settle()
    assert attempts.started == [0]
    attempts.finish(0, FlextResult.ok("primary"))
    assert (await task).value == "primary"


async def test_a_failure_past_the_deadline_starts_no_hedge() -> None:
    """Attempt 0 failing once the deadline has passed is the answer: nothing is retried
    by hedging past it."""
    clock = FakeClock(start=0.0, auto_advance=False)
    attempts = Attempts()
    task = asyncio.create_task(hedge(attempts, delay=5.0, max_hedged=2, deadline=1.0, clock=clock))
    await settle()
    clock.advance(1.0)
    attempts.finish(0, failed(ErrorCode.DEADLINE_EXCEEDED, "deadline exceeded"))
    result = await task
    assert attempts.started == [0]
    assert result.exception is not None
    assert result.exception.code is ErrorCode.DEADLINE_EXCEEDED


async def test_a_failure_before_the_deadline_still_hedges_at_once() -> None:
    """Time left: a failed attempt still starts the next one without waiting."""
    clock = FakeClock(start=0.0, auto_advance=False)
    attempts = Attempts()
    task = asyncio.create_task(hedge(attempts, delay=5.0, deadline=1.0, clock=clock))
    await settle()
    attempts.finish(0, failed(ErrorCode.READ_TIMEOUT, "first"))
    await settle()
    assert attempts.started == [0, 1]
    attempts.finish(1, FlextResult.ok("second"))
    assert (await task).value == "second"


async def test_a_later_hedge_past_the_deadline_is_not_started() -> None:
    """With time for one hedge only, the second is never started; the in-flight
    attempts still decide the result."""
    clock = FakeClock(start=0.0, auto_advance=False)
    attempts = Attempts()
    task = asyncio.create_task(hedge(attempts, delay=1.0, max_hedged=2, deadline=1.5, clock=clock))
    await settle()
    clock.advance(1.0)
    await settle()
    assert attempts.started == [0, 1]
    clock.advance(1.0)
    await settle()
    assert attempts.started == [0, 1]
    attempts.finish(0, failed(ErrorCode.DEADLINE_EXCEEDED, "first"))
    attempts.finish(1, failed(ErrorCode.DEADLINE_EXCEEDED, "second"))
    result = await task
    assert attempts.started == [0, 1]
    assert result.error == "second"


async def test_a_hedge_due_exactly_at_the_deadline_is_not_started() -> None:
    """The deadline instant is already past (as for ``Deadline.expired``)."""
    clock = FakeClock(start=0.0, auto_advance=False)
    attempts = Attempts()
    task = asyncio.create_task(hedge(attempts, delay=1.0, deadline=1.0, clock=clock))
    await settle()
    clock.advance(1.0)
    await settle()
    assert attempts.started == [0]
    attempts.finish(0, FlextResult.ok("primary"))
    assert (await task).value == "primary"


async def test_a_nan_deadline_is_refused() -> None:
    """A NaN deadline would compare false both ways: refused up front."""
    attempts = Attempts()
    with pytest.raises(ValueError, match="NaN"):
        await hedge(attempts, delay=1.0, deadline=math.nan)
    assert attempts.started == []


async def test_the_plugin_holds_hedges_to_the_request_deadline() -> None:
    """HedgingPlugin passes ``request.deadline`` on: no hedge (and no HedgeStarted) when
    the delay outlasts it."""
    clock = FakeClock(start=0.0, auto_advance=False)
    events: list[ResilienceEvent] = []
    plugin = HedgingPlugin(1.0, clock=clock, hooks=[events.append])
    seen: list[HttpRequest] = []
    release = asyncio.Event()

    async def upstream(request: HttpRequest) -> FlextResult[HttpResponse]:
        seen.append(request)
        await release.wait()
        return FlextResult.ok(HttpResponse(200, request=request))

    request = HttpRequest("GET", "http://api.example.com/items", deadline=0.5)
    task = asyncio.create_task(plugin.handle(request, upstream))
    await settle()
    clock.advance(2.0)
    await settle()
    release.set()
    result = await task
    assert result.is_success
    assert seen == [request] and events == []
