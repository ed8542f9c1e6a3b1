"""One deadline for a whole logical request, on an injected monotonic clock.

Envoy's rule: the route timeout covers every retry. flext-api carries the deadline as
an absolute ``HttpRequest.deadline`` so that every layer (limiter waits, bulkhead
queueing, backoff sleeps, ``Retry-After``, each attempt's timeout) measures what is
left against the same instant instead of stacking its own timeout.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from typing import Any

from .._clock import Clock, SystemClock, get_clock

__all__ = ["Deadline", "remaining", "wait_any"]


def remaining(deadline: float | None, now: float) -> float:
    """Seconds left before ``deadline`` at ``now`` (``inf`` for no deadline, never < 0)."""
    if deadline is None:
        return math.inf
    return max(0.0, deadline - now)


class Deadline:
    """An absolute instant on ``clock.monotonic()``, or no deadline at all (``at=None``).

    >>> from flext_api.testing import FakeClock
    >>> clock = FakeClock(start=0.0)
    >>> d = Deadline.after(2.0, clock=clock)
    >>> clock.advance(0.5); d.remaining()
    1.5
    """

    __slots__ = ("at", "clock")

    def __init__(self, at: float | None, *, clock: Clock | None = None) -> None:
        if at is not None and math.isnan(at):
            raise ValueError("a deadline cannot be NaN")
        self.at = at
        self.clock = get_clock(clock)

    @classmethod
    def after(cls, seconds: float | None, *, clock: Clock | None = None) -> Deadline:
        """A deadline ``seconds`` from now (None: no deadline)."""
        clock = get_clock(clock)
        if seconds is None:
            return cls(None, clock=clock)
        if seconds < 0 or math.isnan(seconds):
            raise ValueError(f"a timeout must be >= 0 seconds, got {seconds!r}")
        return cls(clock.monotonic() + seconds, clock=clock)

    def remaining(self, now: float | None = None) -> float:
        """Seconds left (``inf`` without a deadline, 0.0 once it has passed)."""
        return remaining(self.at, self.clock.monotonic() if now is None else now)

    @property
    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self.at is not None and self.clock.monotonic() >= self.at

    def earliest(self, other: float | None) -> Deadline:
        """The sooner of this deadline and the absolute instant ``other``."""
        if other is None or (self.at is not None and self.at <= other):
            return self
        return Deadline(other, clock=self.clock)

    def __repr__(self) -> str:
        if self.at is None:
            return "<Deadline none>"
        return f"<Deadline in {self.remaining():.3f}s>"


async def wait_any(
    futures: Iterable[asyncio.Future[Any]], timeout: float | None, clock: Clock
) -> None:
    """Return when one of ``futures`` is done or ``timeout`` seconds of ``clock`` passed.

    Bulkhead queueing and hedge delays wait for an *event* with a time limit; they are
    not backoff sleeps. So on the real clock they use the event loop's timer, which
    the testing switch does not shorten (a queued caller must not time out at once in
    tests); on any other clock (a ``FakeClock``) they race ``clock.sleep`` so tests
    drive the time limit by hand.
    """
    pending = set(futures)
    if timeout is None:
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        return
    if isinstance(clock, SystemClock):
        await asyncio.wait(pending, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED)
        return
    timer = asyncio.ensure_future(clock.sleep(max(0.0, timeout)))
    try:
        await asyncio.wait({*pending, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not timer.done():
            timer.cancel()
            await asyncio.wait({timer})
