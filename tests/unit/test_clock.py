"""Injectable clocks and the testing switch."""

from __future__ import annotations

import asyncio
import time

import pytest

from flext_api._clock import SystemClock, get_clock, is_testing, system_clock
from flext_api.testing import FakeClock, set_testing, testing_attempts


def test_get_clock_defaults_to_the_system_clock() -> None:
    """get_clock() is the shared SystemClock unless one is given."""
    fake = FakeClock()
    assert get_clock() is system_clock
    assert get_clock(fake) is fake
    assert repr(system_clock) == "<SystemClock>"


def test_system_clock_reads_real_time() -> None:
    """monotonic and time follow the real clocks."""
    clock = SystemClock()
    assert abs(clock.time() - time.time()) < 1
    assert abs(clock.monotonic() - time.monotonic()) < 1


async def test_set_testing_makes_sleep_instant_and_restores() -> None:
    """While testing, a long sleep returns at once; leaving the block restores the state."""
    assert not is_testing()
    with set_testing(True, attempts=2):
        assert is_testing() and testing_attempts() == 2
        start = time.monotonic()
        await system_clock.sleep(30)
        assert time.monotonic() - start < 1
    assert not is_testing() and testing_attempts() is None


async def test_system_clock_sleeps_for_real_when_not_testing() -> None:
    """Outside testing mode a short sleep really waits."""
    start = time.monotonic()
    await system_clock.sleep(0.02)
    assert time.monotonic() - start >= 0.015


async def test_fake_clock_auto_advances_and_records() -> None:
    """A FakeClock sleep moves its time and is recorded; time() follows monotonic()."""
    clock = FakeClock(start=10.0, wall_start=1000.0)
    await clock.sleep(2.5)
    assert clock.monotonic() == 12.5 and clock.time() == 1002.5
    assert clock.sleeps == [2.5]
    assert repr(clock) == "<FakeClock t=12.500>"


async def test_fake_clock_manual_mode_wakes_sleepers_in_order() -> None:
    """With auto_advance off, sleepers wake only when advance() passes their time."""
    clock = FakeClock(auto_advance=False)
    woke: list[str] = []

    async def sleeper(name: str, delay: float) -> None:
        await clock.sleep(delay)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper("late", 2)), asyncio.create_task(sleeper("early", 1))]
    await asyncio.sleep(0)
    clock.advance(1)
    await asyncio.sleep(0)
    assert woke == ["early"]
    clock.advance(1)
    await asyncio.gather(*tasks)
    assert woke == ["early", "late"]
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1)
