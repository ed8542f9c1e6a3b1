"""Deadline and wait_any: one absolute deadline on an injected clock."""

from __future__ import annotations

import asyncio
import math

import pytest

from flext_api._clock import SystemClock
from flext_api.resilience import Deadline
from flext_api.resilience._deadline import remaining, wait_any
from flext_api.testing import FakeClock


def test_remaining_and_expired_follow_the_clock() -> None:
    """remaining() counts down with the clock; expired flips at the instant."""
    clock = FakeClock(start=0.0)
    deadline = Deadline.after(2.0, clock=clock)
    states = [(deadline.remaining(), deadline.expired)]
    for step in (1.5, 0.5):
        clock.advance(step)
        states.append((deadline.remaining(), deadline.expired))
    assert states == [(2.0, False), (0.5, False), (0.0, True)]
    assert deadline.remaining(now=1.0) == 1.0


def test_no_deadline_never_expires() -> None:
    """A deadline of None leaves infinite time."""
    deadline = Deadline.after(None, clock=FakeClock())
    assert deadline.remaining() == math.inf and not deadline.expired
    assert repr(deadline) == "<Deadline none>"
    assert remaining(None, 5.0) == math.inf


def test_earliest_keeps_the_sooner_instant() -> None:
    """earliest() combines a deadline with another absolute instant."""
    clock = FakeClock(start=0.0)
    deadline = Deadline(10.0, clock=clock)
    assert deadline.earliest(None) is deadline
    assert deadline.earliest(20.0) is deadline
    assert deadline.earliest(5.0).at == 5.0
    assert Deadline(None, clock=clock).earliest(3.0).at == 3.0


def test_repr_shows_time_left() -> None:
    """The repr shows the seconds left."""
    assert repr(Deadline(3.0, clock=FakeClock(start=1.0))) == "<Deadline in 2.000s>"


@pytest.mark.parametrize("seconds", [-1.0, math.nan])
def test_invalid_timeouts_are_rejected(seconds: float) -> None:
    """A negative or NaN timeout is a ValueError."""
    with pytest.raises(ValueError):
        Deadline.after(seconds)


def test_nan_deadline_is_rejected() -> None:
    """A NaN instant is a ValueError."""
    with pytest.raises(ValueError):
        Deadline(math.nan)


async def test_wait_any_returns_when_a_future_is_done() -> None:
    """wait_any returns as soon as one future completes, before the time limit."""
    clock = FakeClock(start=0.0, auto_advance=False)
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(future.set_result, None)
    await wait_any([future], 10.0, clock)
    assert future.done() and clock.monotonic() == 0.0


async def test_wait_any_times_out_on_the_fake_clock() -> None:
    """With a fake clock the time limit is the fake clock's sleep."""
    clock = FakeClock(start=0.0)
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    await wait_any([future], 3.0, clock)
    assert not future.done() and clock.sleeps == [3.0]
    future.cancel()


async def test_wait_any_uses_the_loop_timer_on_the_system_clock() -> None:
    """With the system clock the limit is the event loop's timer."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    await wait_any([future], 0.01, SystemClock())
    assert not future.done()
    future.cancel()
