"""The transport watchdog: one timer for every request's read timeout and deadline."""

from __future__ import annotations

import asyncio

import pytest

from flext_api import ErrorCode
from flext_api.transports._watchdog import Watchdog


async def test_nothing_to_watch_returns_none() -> None:
    """No deadline and no read timeout means no watch."""
    dog = Watchdog()
    assert dog.start(None, None) is None
    dog.reading(None)
    dog.pause(None)
    dog.stop(None)
    assert Watchdog.expired(None) is None
    assert len(dog) == 0


async def test_read_timeout_expires_and_is_reported() -> None:
    """A read that waits longer than its timeout cancels the task with READ_TIMEOUT."""
    dog = Watchdog()

    async def slow_read() -> ErrorCode | None:
        watch = dog.start(None, 0.05)
        dog.reading(watch)
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return dog.expired(watch)
        finally:
            dog.stop(watch)
        return None

    assert await slow_read() is ErrorCode.READ_TIMEOUT
    assert len(dog) == 0


async def test_deadline_wins_over_a_later_read_expiry() -> None:
    """The earlier of deadline and read expiry decides, and names the reason."""
    dog = Watchdog()
    loop = asyncio.get_running_loop()

    async def call() -> ErrorCode | None:
        watch = dog.start(loop.time() + 0.05, 10.0)
        dog.reading(watch)
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return dog.expired(watch)
        finally:
            dog.stop(watch)
        return None

    assert await call() is ErrorCode.DEADLINE_EXCEEDED


async def _run_due_timers() -> None:
    """Let the loop run every timer due on its clock (a wake-up runs before them)."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_progress_moves_the_read_expiry_without_expiring(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reads that keep arriving within the timeout never expire; pause stops the clock."""
    # The loop's clock, which the watchdog reads, is moved by the test alone: a busy
    # machine pausing the test between two reads cannot make one late.
    loop = asyncio.get_running_loop()
    now = [loop.time()]
    monkeypatch.setattr(loop, "time", lambda: now[0])
    dog = Watchdog()
    watch = dog.start(None, 0.08)
    for _ in range(4):  # 0.24 s of reads, three read timeouts, none reached
        dog.reading(watch)
        now[0] += 0.06
        await _run_due_timers()
    dog.pause(watch)
    now[0] += 10.0
    await _run_due_timers()
    assert watch is not None and watch.reason is None
    dog.stop(watch)
    dog.close()


async def test_many_watches_share_one_timer_and_each_expires() -> None:
    """Watches with different expiries all expire in order through one handle."""
    dog = Watchdog()

    async def wait(read: float) -> tuple[float, ErrorCode | None]:
        watch = dog.start(None, read)
        dog.reading(watch)
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return read, dog.expired(watch)
        finally:
            dog.stop(watch)
        return read, None

    results: list[tuple[float, ErrorCode | None]] = list(
        await asyncio.gather(wait(0.09), wait(0.03), wait(0.06))
    )
    assert results == [
        (0.09, ErrorCode.READ_TIMEOUT),
        (0.03, ErrorCode.READ_TIMEOUT),
        (0.06, ErrorCode.READ_TIMEOUT),
    ]


async def test_a_real_cancel_is_not_mistaken_for_a_timeout() -> None:
    """A task cancelled by someone else propagates CancelledError."""
    dog = Watchdog()

    async def call() -> None:
        watch = dog.start(None, 5.0)
        dog.reading(watch)
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            assert dog.expired(watch) is None
            raise
        finally:
            dog.stop(watch)

    task = asyncio.create_task(call())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_start_with_now_starts_the_read_clock() -> None:
    """start(..., now) arms the read timeout at once, with no reading() call."""
    dog = Watchdog()
    loop = asyncio.get_running_loop()

    async def slow_read() -> ErrorCode | None:
        watch = dog.start(None, 0.05, loop.time())
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return dog.expired(watch)
        finally:
            dog.stop(watch)
        return None

    assert await slow_read() is ErrorCode.READ_TIMEOUT
    assert len(dog) == 0
