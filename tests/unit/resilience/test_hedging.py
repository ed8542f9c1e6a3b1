"""hedge(): a parallel attempt after a delay; the first success wins, losers cancelled."""

from __future__ import annotations

import asyncio

import pytest

from flext_api import ErrorCode, FlextApiError, FlextResult
from flext_api.resilience import hedge
from flext_api.testing import FakeClock


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


class Attempts:
    """Attempt functions that finish when the test says so."""

    def __init__(self) -> None:
        self.gates: dict[int, asyncio.Future[FlextResult[str]]] = {}
        self.started: list[int] = []
        self.cancelled: list[int] = []
        self.discarded: list[FlextResult[str]] = []

    async def __call__(self, index: int) -> FlextResult[str]:
        self.started.append(index)
        gate: asyncio.Future[FlextResult[str]] = asyncio.get_running_loop().create_future()
        self.gates[index] = gate
        try:
            return await gate
        except asyncio.CancelledError:
            self.cancelled.append(index)
            raise

    def finish(self, index: int, result: FlextResult[str]) -> None:
        self.gates[index].set_result(result)

    async def discard(self, result: FlextResult[str]) -> None:
        self.discarded.append(result)


def failed(message: str) -> FlextResult[str]:
    return FlextResult.fail(FlextApiError.from_code(ErrorCode.READ_TIMEOUT, message))


async def test_a_fast_first_attempt_needs_no_hedge() -> None:
    """When attempt 0 wins before the delay, no second attempt starts."""
    clock = FakeClock(start=0.0, auto_advance=False)
    attempts = Attempts()
    task = asyncio.create_task(hedge(attempts, delay=1.0, clock=clock))
    await settle()
    attempts.finish(0, FlextResult.ok("primary"))
    assert (await task).value == "primary"
    assert attempts.started == [0]


async def test_a_slow_first_attempt_is_hedged_and_the_loser_cancelled() -> None:
    """After the delay a hedge starts; it wins and the slow primary is cancelled."""
    clock = FakeClock(start=0.0, auto_advance=False)
    attempts = Attempts()
    hedges: list[tuple[int, float]] = []
    task = asyncio.create_task(
        hedge(
            attempts,
            delay=1.0,
            clock=clock,
            discard=attempts.discard,
            on_hedge=lambda i, after: hedges.append((i, after)),
        )
    )
    await settle()
    clock.advance(1.0)
    await settle()
    assert attempts.started == [0, 1]
    assert hedges == [(1, 1.0)]
    attempts.finish(1, FlextResult.ok("hedge"))
    assert (await task).value == "hedge"
    assert attempts.cancelled == [0]
    assert attempts.discarded == []


async def test_a_failed_attempt_starts_the_hedge_at_once() -> None:
    """A failure before the delay triggers the next attempt without waiting."""
    clock = FakeClock(start=0.0, auto_advance=False)
    attempts = Attempts()
    task = asyncio.create_task(hedge(attempts, delay=10.0, clock=clock, discard=attempts.discard))
    await settle()
    first_failure = failed("first")
    attempts.finish(0, first_failure)
    await settle()
    assert attempts.started == [0, 1]
    attempts.finish(1, FlextResult.ok("second"))
    assert (await task).value == "second"
    assert attempts.discarded == [first_failure]


async def test_when_every_attempt_fails_the_last_failure_is_returned() -> None:
    """All attempts failing returns the last failure; the others are discarded."""
    clock = FakeClock(start=0.0, auto_advance=False)
    attempts = Attempts()
    task = asyncio.create_task(hedge(attempts, delay=1.0, clock=clock, discard=attempts.discard))
    await settle()
    attempts.finish(0, failed("first"))
    await settle()
    attempts.finish(1, failed("second"))
    result = await task
    assert result.error == "second"
    assert [r.error for r in attempts.discarded] == ["first"]


async def test_a_loser_that_finished_anyway_is_discarded() -> None:
    """Two successes in the same round: the first wins, the other is discarded."""
    clock = FakeClock(start=0.0, auto_advance=False)
    attempts = Attempts()
    task = asyncio.create_task(hedge(attempts, delay=1.0, clock=clock, discard=attempts.discard))
    await settle()
    clock.advance(1.0)
    await settle()
    attempts.finish(0, FlextResult.ok("primary"))
    attempts.finish(1, FlextResult.ok("hedge"))
    assert (await task).value == "primary"
    assert [r.value for r in attempts.discarded] == ["hedge"]


async def test_an_attempt_that_raises_counts_as_a_failure() -> None:
    """An exception from an attempt becomes a failure, not a crash."""

    async def attempt(index: int) -> FlextResult[str]:
        if index == 0:
            raise OSError("socket closed")
        return FlextResult.ok("second")

    result = await hedge(attempt, delay=5.0, clock=FakeClock(auto_advance=False))
    assert result.value == "second"


async def test_max_hedged_zero_is_a_single_attempt() -> None:
    """With no hedges allowed, the only attempt's failure is returned."""
    attempts = Attempts()
    task = asyncio.create_task(hedge(attempts, delay=0.0, max_hedged=0, clock=FakeClock()))
    await settle()
    attempts.finish(0, failed("only"))
    assert (await task).error == "only"
    assert attempts.started == [0]


async def test_waiting_for_the_last_attempt_after_hedges_run_out() -> None:
    """With every hedge started, the remaining attempts are awaited without a timer."""
    clock = FakeClock(start=0.0, auto_advance=False)
    attempts = Attempts()
    task = asyncio.create_task(hedge(attempts, delay=1.0, clock=clock))
    await settle()
    clock.advance(1.0)
    await settle()
    attempts.finish(1, failed("hedge failed"))
    await settle()
    assert not task.done()
    attempts.finish(0, FlextResult.ok("primary"))
    assert (await task).value == "primary"


async def test_cancelling_the_caller_cancels_every_attempt() -> None:
    """Cancelling hedge() itself cancels the attempts in flight."""
    clock = FakeClock(start=0.0, auto_advance=False)
    attempts = Attempts()
    task = asyncio.create_task(hedge(attempts, delay=1.0, clock=clock))
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert attempts.cancelled == [0]


@pytest.mark.parametrize(("delay", "max_hedged"), [(-1.0, 1), (1.0, -1)])
async def test_invalid_arguments(delay: float, max_hedged: int) -> None:
    """A negative delay or hedge count is a ValueError."""
    with pytest.raises(ValueError):
        await hedge(Attempts(), delay=delay, max_hedged=max_hedged)


async def test_an_attempt_cancelled_from_inside_counts_as_a_failure() -> None:
    """An attempt whose own task is cancelled is a CANCELLED failure; the hedge goes on."""

    async def attempt(index: int) -> FlextResult[str]:
        if index == 0:
            raise asyncio.CancelledError
        return FlextResult.ok("second")

    result = await hedge(attempt, delay=5.0, clock=FakeClock(auto_advance=False))
    assert result.value == "second"
