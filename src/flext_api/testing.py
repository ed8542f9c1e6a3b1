"""Testing kit: a fake clock and the process-wide testing switch.

``set_testing(True)`` makes every backoff, Retry-After and limiter sleep return at once
and, when ``attempts`` is given, caps retry attempts (as stamina's ``set_testing`` does).
It works as a plain call or as a context manager that restores the previous state::

    with set_testing(True, attempts=1):
        ...
"""

from __future__ import annotations

import asyncio
import heapq
from types import TracebackType

from ._clock import _TESTING, is_testing

__all__ = ["FakeClock", "is_testing", "set_testing", "testing_attempts"]


class _RestoreTesting:
    __slots__ = ("_previous",)

    def __init__(self, previous: tuple[bool, int | None]) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _TESTING.enabled, _TESTING.attempts = self._previous


def set_testing(testing: bool, *, attempts: int | None = None) -> _RestoreTesting:
    """Turn testing mode on or off process-wide; returns a context manager restoring it.

    ``attempts`` caps the total attempts a retry stage makes while testing (None keeps
    the configured number).
    """
    previous = (_TESTING.enabled, _TESTING.attempts)
    _TESTING.enabled = testing
    _TESTING.attempts = attempts if testing else None
    return _RestoreTesting(previous)


def testing_attempts() -> int | None:
    """The attempt cap set by :func:`set_testing`, or None."""
    return _TESTING.attempts if _TESTING.enabled else None


class FakeClock:
    """A clock that moves only when told to.

    ``monotonic()`` and ``time()`` read the fake time; ``advance(s)`` moves it and wakes
    sleepers whose time has come; ``await sleep(s)`` waits for that (with
    ``auto_advance=True``, the default, it moves time itself and returns at once, so
    async code under test runs without real waiting). ``sleeps`` records every sleep.
    """

    def __init__(
        self,
        start: float = 1_000.0,
        *,
        wall_start: float = 1_700_000_000.0,
        auto_advance: bool = True,
    ) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self.auto_advance = auto_advance
        self.sleeps: list[float] = []
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake due sleepers."""
        if seconds < 0:
            raise ValueError("a clock cannot go back")
        self._now += seconds
        while self._waiters and self._waiters[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        if self.auto_advance:
            self.advance(seconds)
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._waiters, (self._now + seconds, self._seq, fut))
        await fut

    def __repr__(self) -> str:
        return f"<FakeClock t={self._now:.3f}>"
