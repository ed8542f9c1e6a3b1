"""Injectable time: a :class:`Clock` gives monotonic time, wall time and sleep.

Every policy that waits or measures (retry backoff, breaker windows, limiter buckets,
cache freshness) takes a clock, so unit tests drive time by hand with
:class:`flext_api.testing.FakeClock` and never sleep. The process-wide testing switch
(:func:`flext_api.testing.set_testing`) turns real backoff sleeps off everywhere.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "get_clock", "is_testing", "system_clock", "testing_attempts"]


@runtime_checkable
class Clock(Protocol):
    """What a policy needs to know about time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for durations and deadlines)."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch (for HTTP dates)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a testing clock may only advance its time)."""
        ...


class _TestingState:
    __slots__ = ("attempts", "enabled")

    def __init__(self) -> None:
        self.enabled = False
        self.attempts: int | None = None


_TESTING = _TestingState()


def is_testing() -> bool:
    """True while :func:`flext_api.testing.set_testing` is on."""
    return _TESTING.enabled


def testing_attempts() -> int | None:
    """The attempt cap set by :func:`flext_api.testing.set_testing`, or None."""
    return _TESTING.attempts if _TESTING.enabled else None


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.time`` and ``asyncio.sleep``.

    While the testing switch is on, :meth:`sleep` returns at once (after yielding to the
    event loop) so backoff and Retry-After waits cost nothing in tests.
    """

    __slots__ = ()

    # The C functions themselves: no Python frame per read (several per request).
    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)

    async def sleep(self, seconds: float) -> None:
        if _TESTING.enabled:
            await asyncio.sleep(0)
            return
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "<SystemClock>"


system_clock = SystemClock()


def get_clock(clock: Clock | None = None) -> Clock:
    """``clock`` when given, else the shared :class:`SystemClock`."""
    return clock if clock is not None else system_clock
