"""Bulkhead: per-host concurrency cap with a bounded FIFO queue."""

from __future__ import annotations

import asyncio
import time

import pytest

from flext_api import BulkheadConfig, ErrorCode
from flext_api._clock import SystemClock
from flext_api.resilience import Bulkhead, BulkheadRejected, ResilienceEvent
from flext_api.testing import FakeClock, set_testing


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_calls_within_the_cap_pass_at_once() -> None:
    """Up to max_concurrent permits are granted without waiting."""
    bulkhead = Bulkhead(2, 0, clock=FakeClock())
    assert (await bulkhead.acquire("h")).value == 0.0
    assert (await bulkhead.acquire("h")).value == 0.0
    assert bulkhead.stats("h") == (2, 0)


async def test_queued_callers_get_permits_in_fifo_order() -> None:
    """Released permits go to the oldest waiter first."""
    clock = FakeClock(start=0.0, auto_advance=False)
    bulkhead = Bulkhead(1, 10, clock=clock)
    await bulkhead.acquire("h")
    order: list[int] = []

    async def caller(i: int) -> None:
        assert (await bulkhead.acquire("h")).is_success
        order.append(i)

    tasks = [asyncio.create_task(caller(i)) for i in range(3)]
    await settle()
    assert bulkhead.stats("h") == (1, 3)
    for expected in range(3):
        bulkhead.release("h")
        await settle()
        assert order == list(range(expected + 1))
    await asyncio.gather(*tasks)
    assert bulkhead.stats("h") == (1, 0)


async def test_full_queue_rejects_at_once() -> None:
    """With the cap and the queue full, a caller fails with BULKHEAD_FULL immediately."""
    events: list[ResilienceEvent] = []
    clock = FakeClock(start=0.0, auto_advance=False)
    bulkhead = Bulkhead(1, 1, clock=clock, hooks=[events.append])
    await bulkhead.acquire("h")
    queued = asyncio.create_task(bulkhead.acquire("h"))
    await settle()
    result = await bulkhead.acquire("h")
    assert result.error_code is ErrorCode.BULKHEAD_FULL
    assert "1/1 running, 1/1 queued" in (result.error or "")
    assert events == [BulkheadRejected("h", 1, 1, "queue full")]
    bulkhead.release("h")
    assert (await queued).is_success


async def test_queue_wait_respects_the_deadline() -> None:
    """A waiter still queued at its deadline gives up with BULKHEAD_FULL."""
    clock = FakeClock(start=0.0, auto_advance=False)
    bulkhead = Bulkhead(1, 5, clock=clock)
    await bulkhead.acquire("h")
    waiter = asyncio.create_task(bulkhead.acquire("h", deadline=2.0))
    await settle()
    clock.advance(2.0)
    result = await waiter
    assert result.error_code is ErrorCode.BULKHEAD_FULL
    assert "deadline" in (result.error or "")
    assert bulkhead.stats("h") == (1, 0)
    bulkhead.release("h")
    assert bulkhead.stats("h") == (0, 0)


async def test_a_passed_deadline_is_refused_before_queueing() -> None:
    """A caller whose deadline has already passed does not join the queue."""
    clock = FakeClock(start=10.0)
    bulkhead = Bulkhead(1, 5, clock=clock)
    await bulkhead.acquire("h")
    result = await bulkhead.acquire("h", deadline=5.0)
    assert result.error_code is ErrorCode.BULKHEAD_FULL
    assert bulkhead.stats("h") == (1, 0)


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    """Cancelling a queued caller frees its queue place; the permit skips it."""
    clock = FakeClock(start=0.0, auto_advance=False)
    bulkhead = Bulkhead(1, 5, clock=clock)
    await bulkhead.acquire("h")
    first = asyncio.create_task(bulkhead.acquire("h"))
    second = asyncio.create_task(bulkhead.acquire("h"))
    await settle()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert bulkhead.stats("h") == (1, 1)
    bulkhead.release("h")
    assert (await second).is_success
    assert bulkhead.stats("h") == (1, 0)


async def test_waiters_that_give_up_leave_nothing_behind() -> None:
    """Waiters timing out or cancelled while the permits stay taken (a hung host) leave
    no entry behind: the queue's memory is bounded by ``max_queue``, not by how many
    callers gave up before the next release."""
    clock = FakeClock(start=0.0, auto_advance=False)
    bulkhead = Bulkhead(1, 2, clock=clock)
    await bulkhead.acquire("h")
    compartment = bulkhead._keys.peek("h")
    assert compartment is not None
    for round_ in range(50):
        timed = asyncio.create_task(bulkhead.acquire("h", deadline=clock.monotonic() + 1.0))
        cancelled = asyncio.create_task(bulkhead.acquire("h"))
        await settle()
        cancelled.cancel()
        clock.advance(1.0)
        assert (await timed).error_code is ErrorCode.BULKHEAD_FULL
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert len(compartment.queue) == 0, round_
    assert bulkhead.stats("h") == (1, 0)
    waiter = asyncio.create_task(bulkhead.acquire("h"))
    await settle()
    bulkhead.release("h")
    assert (await waiter).is_success
    assert bulkhead.stats("h") == (1, 0)


async def test_a_waiter_cancelled_after_the_handoff_passes_the_permit_on() -> None:
    """A permit handed to a caller that is being cancelled goes to the next one."""
    clock = FakeClock(start=0.0, auto_advance=False)
    bulkhead = Bulkhead(1, 5, clock=clock)
    await bulkhead.acquire("h")
    first = asyncio.create_task(bulkhead.acquire("h"))
    second = asyncio.create_task(bulkhead.acquire("h"))
    await settle()
    bulkhead.release("h")  # hands the permit to ``first``...
    first.cancel()  # ...which is cancelled before it could run
    with pytest.raises(asyncio.CancelledError):
        await first
    assert (await second).is_success
    assert bulkhead.stats("h") == (1, 0)


async def test_queue_waits_are_real_in_testing_mode() -> None:
    """With the system clock, set_testing does not make a queued caller time out at once."""
    bulkhead = Bulkhead(1, 5, clock=SystemClock())
    await bulkhead.acquire("h")
    with set_testing(True):
        waiter = asyncio.create_task(bulkhead.acquire("h", deadline=time.monotonic() + 5.0))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        bulkhead.release("h")
        assert (await waiter).is_success


async def test_system_clock_deadline_in_the_queue() -> None:
    """With the system clock a short queue deadline really expires."""
    bulkhead = Bulkhead(1, 5, clock=SystemClock())
    await bulkhead.acquire("h")
    result = await bulkhead.acquire("h", deadline=time.monotonic() + 0.02)
    assert result.error_code is ErrorCode.BULKHEAD_FULL


async def test_queue_without_deadline_waits_for_a_permit() -> None:
    """A caller with no deadline waits as long as it takes."""
    clock = FakeClock(start=0.0, auto_advance=False)
    bulkhead = Bulkhead(1, 5, clock=clock)
    await bulkhead.acquire("h")
    waiter = asyncio.create_task(bulkhead.acquire("h"))
    await settle()
    clock.advance(1_000.0)
    await settle()
    assert not waiter.done()
    bulkhead.release("h")
    assert (await waiter).is_success


def test_release_without_acquire_is_an_error() -> None:
    """Releasing a permit that was never taken is a programming error."""
    bulkhead = Bulkhead()
    with pytest.raises(RuntimeError, match="without a matching acquire"):
        bulkhead.release("h")


def test_from_config_repr_and_validation() -> None:
    """from_config copies the cap and queue; bad sizes are ValueErrors."""
    bulkhead = Bulkhead.from_config(BulkheadConfig(max_concurrent=3, max_queue=4))
    assert (bulkhead.max_concurrent, bulkhead.max_queue) == (3, 4)
    assert repr(bulkhead) == "<Bulkhead 3+4 per key [0 keys: 0 active, 0 queued]>"
    with pytest.raises(ValueError):
        Bulkhead(0, 1)
    with pytest.raises(ValueError):
        Bulkhead(1, -1)


async def test_idle_compartments_are_evicted_but_busy_ones_kept() -> None:
    """A host with nothing running or queued is forgotten after idle_eviction seconds."""
    clock = FakeClock(start=0.0)
    bulkhead = Bulkhead(2, 2, idle_eviction=60.0, clock=clock)
    await bulkhead.acquire("idle")
    bulkhead.release("idle")
    await bulkhead.acquire("busy")
    clock.advance(100.0)
    await bulkhead.acquire("new")
    assert repr(bulkhead) == "<Bulkhead 2+2 per key [2 keys: 2 active, 0 queued]>"
    assert bulkhead.stats("idle") == (0, 0)
