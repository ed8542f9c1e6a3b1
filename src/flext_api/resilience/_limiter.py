"""Per-host GCRA rate limiter that *waits* for capacity within the request's deadline.

Hand-written because the Python limiters miss what an HTTP client needs (research
notes §3.9, §4.4): ``limits`` only answers yes/no and cannot block until capacity
(limits#221); aiolimiter lets a first burst of ``max_rate`` through (aiolimiter#90,
#200) and wakes every waiter on every tick (aiolimiter#73); neither is per host,
deadline-aware or adaptive.

**GCRA as a scheduler.** Each key keeps a theoretical arrival time (TAT). A caller
arriving at ``now`` gets the slot ``max(now, TAT - tau)`` and pushes TAT to
``max(TAT, now) + interval``, where ``interval = 1 / rate`` and
``tau = (burst - 1) * interval``. So at most ``burst`` calls pass at once and then one
per ``interval``: no burst beyond ``burst``. Because the slot is reserved at arrival,
each waiter knows its own wake-up time and sleeps until exactly then: waiters are
served first-come first-served and nobody is woken for nothing, even with thousands
queued. A slot past the deadline is refused (``RATE_LIMITED``, ``retry_after`` = the
wait it would have needed) without being reserved.

**Adapting to the server** (``adaptive=True``, the default). ``feedback`` is called
with what a response said:

* a hint (``Retry-After``, or the reset of a quota with ``RateLimit-Remaining: 0``)
  pauses the key until then, for at most ``max_pause`` seconds (60 s, the retry
  policy's ``retry_after_max``: a far-future date or a garbage reset must not stall a
  host for years, nor callers without a deadline forever): no slot is handed out
  before the hint, and the queue of callers already asleep moves back by the length
  of the pause (each sleeper notices on waking and sleeps the difference), so the
  FIFO order survives the pause;
* a 429 (throttled) halves the key's rate, down to ``min_factor`` of the configured
  rate, which then recovers linearly to the full rate over ``recovery`` seconds:
  additive increase, multiplicative decrease, as in TCP and the AWS SDKs' adaptive
  retry mode.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Sequence
from typing import Protocol

from .._clock import Clock, get_clock
from .._config import RateLimitConfig
from .._errors import RateLimitedError
from .._numbers import is_int
from .._result import FlextResult
from ._events import Emitter, EventHook, RateLimitThrottled, RateLimitWaited
from ._keyed import IdleMap

__all__ = ["AsyncLimiter", "RateLimiter"]


class AsyncLimiter(Protocol):
    """What the rate-limit plugin needs: :class:`RateLimiter` and ``RedisRateLimiter``."""

    async def acquire(self, key: str, deadline: float | None = None) -> FlextResult[float]:
        """Wait for ``key``'s next slot before ``deadline``; the result is the wait."""
        ...

    async def afeedback(
        self,
        key: str,
        now: float,
        *,
        retry_after: float | None = None,
        throttled: bool = False,
        reason: str = "",
    ) -> None:
        """Slow ``key`` down after a server's throttling answer."""
        ...


class _KeyState:
    __slots__ = ("factor", "factor_at", "paused_until", "shift", "tat", "waiters")

    def __init__(self) -> None:
        self.tat = -math.inf
        self.paused_until = -math.inf
        self.shift = 0.0  # total seconds the queue was pushed back by pauses
        self.factor = 1.0  # fraction of the configured rate in force after a slow-down
        self.factor_at = 0.0
        self.waiters = 0


def _idle(state: _KeyState) -> bool:
    return state.waiters == 0


class RateLimiter:
    """Local per-key GCRA limiter: ``rate`` calls per second, ``burst`` at once.

    >>> import asyncio
    >>> from flext_api.testing import FakeClock
    >>> limiter = RateLimiter(rate=2.0, clock=FakeClock(start=0.0))
    >>> [asyncio.run(limiter.acquire("h")).value for _ in range(3)]
    [0.0, 0.5, 0.5]
    """

    __slots__ = (
        "_clock",
        "_emitter",
        "_interval",
        "_keys",
        "adaptive",
        "burst",
        "max_pause",
        "min_factor",
        "rate",
        "recovery",
    )

    def __init__(
        self,
        rate: float = 10.0,
        burst: int = 1,
        *,
        adaptive: bool = True,
        min_factor: float = 1 / 16,
        recovery: float = 30.0,
        max_pause: float = 60.0,
        idle_eviction: float = 600.0,
        clock: Clock | None = None,
        hooks: Sequence[EventHook] = (),
    ) -> None:
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"rate must be a finite number > 0 per second, got {rate!r}")
        if not is_int(burst):
            # A NaN or infinite burst made every slot "now": no limit at all.
            raise TypeError(f"burst must be an int, got {type(burst).__name__}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        if burst > sys.float_info.max:
            # (burst - 1) * interval would raise OverflowError on every acquire.
            raise ValueError("burst is too large to schedule (more than a float holds)")
        if not 0 < min_factor <= 1:
            raise ValueError(f"min_factor must be within (0, 1], got {min_factor!r}")
        if not 0 < recovery < math.inf:
            raise ValueError(f"recovery must be a finite number > 0 seconds, got {recovery!r}")
        if not 0 <= max_pause < math.inf:
            raise ValueError(f"max_pause must be a finite number >= 0 seconds, got {max_pause!r}")
        if not math.isfinite(1.0 / rate / min_factor):
            # 1/rate (or the slowed-down 1/(rate x min_factor)) overflows: the slot
            # arithmetic would turn NaN (0 x inf) and admit every call at once.
            raise ValueError(f"rate {rate!r} per second is too small to schedule")
        self.rate = rate
        self.burst = burst
        self.adaptive = adaptive
        self.min_factor = min_factor
        self.recovery = recovery
        self.max_pause = max_pause
        self._interval = 1.0 / rate
        self._clock = get_clock(clock)
        self._emitter = Emitter(hooks)
        self._keys: IdleMap[_KeyState] = IdleMap(
            lambda _key: _KeyState(), idle=idle_eviction, can_evict=_idle
        )

    @classmethod
    def from_config(
        cls,
        config: RateLimitConfig,
        *,
        clock: Clock | None = None,
        hooks: Sequence[EventHook] = (),
    ) -> RateLimiter:
        """A limiter with ``config``'s rate, burst, adaptivity and longest pause."""
        return cls(
            config.rate,
            config.burst,
            adaptive=config.adaptive,
            max_pause=config.max_pause,
            clock=clock,
            hooks=hooks,
        )

    # -- sans-IO core ---------------------------------------------------------------------------
    def rate_factor(self, key: str, now: float) -> float:
        """Fraction of the configured rate currently in force for ``key`` (1.0 = full)."""
        state = self._keys.peek(key)
        return 1.0 if state is None else self._factor(state, now)

    def _factor(self, state: _KeyState, now: float) -> float:
        factor = state.factor
        if factor >= 1.0:
            return 1.0
        factor += (now - state.factor_at) / self.recovery
        if factor >= 1.0:
            state.factor = 1.0
            return 1.0
        return factor

    def _reserve(self, state: _KeyState, now: float, max_wait: float) -> float:
        """Reserve a slot and return its wait, or return -(needed wait) when too late.

        A refused caller reserves nothing. A refusal always needs a wait > 0, so it is
        never ``-0.0`` (which reads as a grant): a ``max_wait`` below 0 (a deadline
        already passed) still takes a slot that needs no wait.
        """
        interval = self._interval / self._factor(state, now)
        tat = state.tat if state.tat > now else now
        slot = max(now, tat - (self.burst - 1) * interval, state.paused_until)
        wait = slot - now
        if wait > max_wait and wait > 0.0:
            return -wait
        state.tat = max(tat, slot) + interval
        return wait

    def reserve(self, key: str, now: float, max_wait: float = math.inf) -> float | None:
        """Reserve the next slot for ``key``: its wait in seconds, or None if > ``max_wait``."""
        wait = self._reserve(self._keys.get(key, now), now, max_wait)
        return None if wait < 0 else wait

    def feedback(
        self,
        key: str,
        now: float,
        *,
        retry_after: float | None = None,
        throttled: bool = False,
        reason: str = "",
    ) -> None:
        """Slow ``key`` down after what the server said (no-op unless ``adaptive``).

        ``retry_after`` pauses the key until ``now + retry_after`` (at most ``max_pause``
        seconds; NaN or a value <= 0 pauses nothing); ``throttled`` (a 429) halves its
        rate, which then recovers over ``recovery`` seconds.
        """
        if not self.adaptive or (retry_after is None and not throttled):
            return
        state = self._keys.get(key, now)
        paused_for = 0.0
        if retry_after is not None and retry_after > 0:
            until = now + min(retry_after, self.max_pause)
            paused_from = max(now, state.paused_until)
            if until > paused_from:
                paused_for = until - paused_from
                state.paused_until = until
                if state.waiters:
                    # Push the queue of reserved slots back by the extra pause (its head
                    # lands within one interval after ``until``); sleepers catch up.
                    state.tat += paused_for
                    state.shift += paused_for
        if throttled:
            state.factor = max(self.min_factor, self._factor(state, now) / 2)
            state.factor_at = now
        if self._emitter.active:
            why = reason or ("throttled" if throttled else "retry-after")
            self._emitter.emit(RateLimitThrottled(key, paused_for, self._factor(state, now), why))

    async def afeedback(
        self,
        key: str,
        now: float,
        *,
        retry_after: float | None = None,
        throttled: bool = False,
        reason: str = "",
    ) -> None:
        """:meth:`feedback` with the async signature every limiter shares."""
        self.feedback(key, now, retry_after=retry_after, throttled=throttled, reason=reason)

    # -- async driver ---------------------------------------------------------------------------
    async def acquire(self, key: str, deadline: float | None = None) -> FlextResult[float]:
        """Wait for ``key``'s next slot; the result is the seconds waited.

        Fails with ``RATE_LIMITED`` (``retry_after`` = the wait needed) when the slot
        lies past ``deadline`` (absolute, on the limiter's clock); nothing is reserved then.
        """
        clock = self._clock
        start = clock.monotonic()
        state = self._keys.get(key, start)
        max_wait = math.inf if deadline is None else deadline - start
        wait = self._reserve(state, start, max_wait)
        if wait < 0:
            return self._refuse(key, state, start, -wait, max_wait)
        if wait == 0.0:
            return FlextResult.ok(0.0)
        # What this caller reserved, to give the slot back if it leaves while last in line.
        interval = self._interval / self._factor(state, start)
        reserved_tat, reserved_shift = state.tat, state.shift
        shift_seen = reserved_shift
        state.waiters += 1
        try:
            await clock.sleep(wait)
            while state.shift != shift_seen:
                # A pause began while we slept: our slot moved back by the difference.
                extra = state.shift - shift_seen
                shift_seen = state.shift
                now = clock.monotonic()
                if deadline is not None and now + extra > deadline:
                    self._give_back(state, reserved_tat, reserved_shift, interval)
                    return self._refuse(key, state, now, extra, deadline - now)
                await clock.sleep(extra)
        except asyncio.CancelledError:
            self._give_back(state, reserved_tat, reserved_shift, interval)
            raise
        finally:
            state.waiters -= 1
        waited = clock.monotonic() - start
        if self._emitter.active:
            self._emitter.emit(RateLimitWaited(key, waited))
        return FlextResult.ok(waited)

    @staticmethod
    def _give_back(state: _KeyState, tat: float, shift: float, interval: float) -> None:
        """Free a leaving caller's slot if nobody reserved after it; else leave a hole."""
        if state.tat == tat + (state.shift - shift):
            state.tat -= interval

    def _refuse(
        self, key: str, state: _KeyState, now: float, needed: float, left: float
    ) -> FlextResult[float]:
        return FlextResult.fail(
            RateLimitedError(
                f"rate limit for {key!r} needs a {needed:.3g}s wait but the deadline "
                f"leaves {max(0.0, left):.3g}s",
                retry_after=needed,
                details={"key": key, "rate": self.rate * self._factor(state, now)},
            )
        )

    def waiting(self, key: str) -> int:
        """Callers currently asleep waiting for ``key``."""
        state = self._keys.peek(key)
        return 0 if state is None else state.waiters

    def __repr__(self) -> str:
        waiting = sum(state.waiters for state in self._keys.values())
        return (
            f"<RateLimiter {self.rate:g}/s burst={self.burst} "
            f"[{len(self._keys)} keys, {waiting} waiting]>"
        )
