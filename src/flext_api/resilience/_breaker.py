"""A sans-IO circuit breaker: closed, open, half-open, plus manual states.

Hand-written because no Python breaker gets the details right together (research
notes §3.3, §3.6, §4.6): pybreaker holds one lock around every call so callers run one
at a time (pybreaker#55) and has no asyncio support (pybreaker#7); purgatory lets every
call through while half-open; none has rate-based windows with a minimum throughput,
slow-call detection, a half-open probe budget *and* an open time that grows with jitter.

The breaker never runs the call. The driver asks :meth:`CircuitBreaker.allow`, runs the
call itself, then reports :meth:`on_success` / :meth:`on_failure` (or :meth:`release`
when the outcome says nothing about the host). Every method is synchronous and
constant-time, so no lock is held while a call runs; the breaker is meant to be used
from one event loop.

Rules (defaults from :class:`~flext_api.BreakerConfig`):

* **closed -> open** on ``consecutive_failures`` failures in a row that say the host
  itself is down (``on_failure(..., host_down=True)``, the default: Envoy's
  ``consecutive_gateway_failure``, pybreaker), or when, over the last ``window`` seconds
  with at least ``minimum_calls`` calls, failures of any kind reach ``failure_ratio``
  (Polly, resilience4j) or slow calls (``>= slow_call_duration``) reach
  ``slow_call_ratio`` (resilience4j; on only when both are set; a slow trial call then
  counts as a failed one). A failure with ``host_down=False`` (one path's HTTP 500: the
  host answered) counts only in the ratio and, like a success, ends a run of
  host-down failures.
* **open -> half-open** once the open time has passed (checked lazily in ``allow``).
  The open time is ``open_duration * multiplier**(k-1)`` for the k-th opening in a row,
  capped at ``open_duration_max`` (Envoy's ejection time), then shortened by a random
  fraction up to ``open_jitter`` so many breakers do not probe in lockstep while the
  cap is never exceeded.
* **half-open** admits at most ``half_open_calls`` trial calls (resilience4j's
  permitted calls); when all of them succeed the breaker closes and the growth resets;
  one failing trial re-opens it at once.
* Results of calls admitted before the last state change (``Admit.generation``) do
  not move a half-open breaker: a slow call from before the opening must not close it.

:meth:`CircuitBreaker.call` is the seed's driver for any call (sync or async): it asks,
runs, reports, and raises :class:`~flext_api._errors.CircuitOpenError` when refused.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from .._clock import Clock, get_clock
from .._config import BreakerConfig
from .._errors import CircuitOpenError
from .._result import FlextResult
from ._circuit import CircuitConfig
from ._events import BreakerStateChanged, Emitter, EventHook
from ._window import SlidingWindow

__all__ = ["Admit", "BreakerState", "CircuitBreaker", "Reject"]

_CALLS: Final = 0
_FAILURES: Final = 1
_SLOW: Final = 2


class BreakerState(StrEnum):
    """States of a :class:`CircuitBreaker` (resilience4j's set, minus METRICS_ONLY naming)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    #: Manual: reject everything until reset (Polly ``Isolate``, r4j FORCED_OPEN).
    FORCED_OPEN = "forced_open"
    #: Manual: admit everything, keep counting, never trip (r4j METRICS_ONLY).
    FORCED_CLOSED = "forced_closed"
    #: Manual: admit everything, count nothing (r4j DISABLED).
    DISABLED = "disabled"


# The members as module globals: a global read is a cached dict hit, while
# ``BreakerState.CLOSED`` goes through the enum class on every call (hot paths below).
_CLOSED = BreakerState.CLOSED
_FORCED_CLOSED = BreakerState.FORCED_CLOSED
_HALF_OPEN = BreakerState.HALF_OPEN


@dataclass(frozen=True, slots=True)
class Admit:
    """Verdict of :meth:`CircuitBreaker.allow`: go ahead; hand it back with the result."""

    generation: int
    trial: bool = False


@dataclass(frozen=True, slots=True)
class Reject:
    """Verdict of :meth:`CircuitBreaker.allow`: refused; retry in ``retry_after`` s (or None)."""

    state: BreakerState
    retry_after: float | None


class CircuitBreaker:
    """One breaker (usually one host). See the module docstring for the rules.

    >>> from flext_api import BreakerConfig
    >>> b = CircuitBreaker(BreakerConfig(consecutive_failures=1, open_jitter=0))
    >>> b.on_failure(0.0, 0.1, b.allow(0.0)); b.state
    <BreakerState.OPEN: 'open'>
    >>> b.allow(1.0)
    Reject(state=<BreakerState.OPEN: 'open'>, retry_after=4.0)
    """

    __slots__ = (
        "_admit",
        "_consecutive",
        "_emitter",
        "_generation",
        "_in_flight",
        "_open_for",
        "_openings",
        "_rng",
        "_slow_after",
        "_trial_admit",
        "_trial_successes",
        "_window",
        "clock",
        "config",
        "key",
        "open_until",
        "state",
    )

    def __init__(
        self,
        config: BreakerConfig | CircuitConfig | None = None,
        *,
        key: str = "",
        rng: random.Random | None = None,
        hooks: Emitter | Sequence[EventHook] = (),
        clock: Clock | None = None,
    ) -> None:
        if isinstance(config, CircuitConfig):
            config = config.to_breaker_config()
        self.config = config if config is not None else BreakerConfig()
        self.clock = get_clock(clock)  # used by call() only; allow()/on_*() take ``now``
        self.key = key
        self.state = BreakerState.CLOSED
        self.open_until = 0.0
        self._open_for = 0.0  # the open time chosen at the last opening
        self._rng = rng if rng is not None else random.Random()
        self._emitter = hooks if isinstance(hooks, Emitter) else Emitter(hooks)
        self._window = SlidingWindow(self.config.window, fields=3)
        # Slow-call detection is on only when both the threshold and the ratio are set.
        self._slow_after = (
            self.config.slow_call_duration if self.config.slow_call_ratio is not None else None
        )
        self._consecutive = 0
        self._openings = 0  # consecutive openings without a successful close in between
        self._in_flight = 0  # half-open trials admitted and not yet reported
        self._trial_successes = 0
        self._generation = 0
        # Pre-built verdicts: the closed fast path allocates nothing.
        self._admit = Admit(0)
        self._trial_admit = Admit(0, trial=True)

    # -- the questions ----------------------------------------------------------------------
    def allow(self, now: float) -> Admit | Reject:
        """May a call start at ``now``?"""
        state = self.state
        if state is _CLOSED or state is _FORCED_CLOSED:
            return self._admit
        if state is BreakerState.OPEN:
            if now < self.open_until:
                left = self.open_until - now
                if left > self._open_for:
                    # The clock went back: stay open for the open time from now, not
                    # for the open time plus however far the clock jumped.
                    self.open_until = now + self._open_for
                    left = self._open_for
                return Reject(state, left)
            self._transition(BreakerState.HALF_OPEN, now, "open time elapsed")
            state = BreakerState.HALF_OPEN
        if state is _HALF_OPEN:
            if self._in_flight + self._trial_successes >= self.config.half_open_calls:
                return Reject(state, None)
            self._in_flight += 1
            return self._trial_admit
        if state is BreakerState.DISABLED:
            return self._admit
        return Reject(state, None)  # FORCED_OPEN

    @property
    def failure_stats(self) -> tuple[int, int, int]:
        """``(calls, failures, slow calls)`` currently in the window (as of the last call)."""
        calls, failures, slow = self._window.snapshot()
        return calls, failures, slow

    # -- the reports ------------------------------------------------------------------------
    def on_success(self, now: float, duration: float, admit: Admit | None = None) -> None:
        """The call admitted by ``admit`` succeeded after ``duration`` seconds."""
        slow_after = self._slow_after
        if slow_after is not None and duration >= slow_after:
            self._record(now, admit, failed=False, slow=True)
            return
        state = self.state
        if state is _CLOSED or state is _FORCED_CLOSED:
            self._consecutive = 0
            self._window.add(now, _CALLS)
            return
        if state is _HALF_OPEN and self._current(admit):
            self._in_flight -= 1
            self._trial_successes += 1
            if self._trial_successes >= self.config.half_open_calls:
                self._close(now, "trial calls succeeded")

    def on_failure(
        self, now: float, duration: float, admit: Admit | None = None, *, host_down: bool = True
    ) -> None:
        """The call admitted by ``admit`` failed.

        ``host_down`` (the default) says the failure is the host's as a whole (it could
        not be reached, or a gateway said it is down): such failures in a row open the
        breaker. False says only this call failed (an HTTP 500 of one path): it counts
        in the failure ratio only.
        """
        self._record(now, admit, failed=True, slow=self._is_slow(duration), host_down=host_down)

    def release(self, admit: Admit | None = None) -> None:
        """The call ended without telling anything about the host (cancelled, bad input)."""
        if self.state is _HALF_OPEN and self._current(admit) and self._in_flight:
            self._in_flight -= 1

    # -- the driver -------------------------------------------------------------------------
    async def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``func(*args, **kwargs)`` (sync or async) through the breaker.

        Returns what ``func`` returns and re-raises what it raises (counting it as a
        failure); raises :class:`~flext_api._errors.CircuitOpenError` (code
        ``CIRCUIT_OPEN``, ``retry_after`` set while open) without calling ``func`` when
        the breaker refuses. A cancelled call is not counted.

        >>> import asyncio
        >>> asyncio.run(CircuitBreaker(CircuitConfig()).call(lambda x: x * 2, 21))
        42
        """
        clock = self.clock
        start = clock.monotonic()
        verdict = self.allow(start)
        if isinstance(verdict, Reject):
            name = f" {self.key!r}" if self.key else ""
            raise CircuitOpenError(
                f"circuit{name} is {self.state.value}: call refused",
                retry_after=verdict.retry_after,
                details={"state": self.state.value, "key": self.key},
            )
        try:
            result = func(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            now = clock.monotonic()
            self.on_failure(now, now - start, verdict)
            raise
        except BaseException:  # cancelled: says nothing about the dependency
            self.release(verdict)
            raise
        now = clock.monotonic()
        self.on_success(now, now - start, verdict)
        return result

    async def call_result(
        self, func: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> FlextResult[Any]:
        """:meth:`call` as a :class:`FlextResult`: never raises (except cancellation).

        ``func`` may itself return a ``FlextResult``: a failed one counts as a failure and
        is returned as it is; a successful one is unwrapped into the returned success.
        """
        try:
            return FlextResult.ok(await self.call(_raising_failures(func), *args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - any error of func becomes the failure
            return FlextResult.fail(exc)

    @property
    def failures(self) -> int:
        """Consecutive failures so far (the seed's ``breaker.failures``)."""
        return self._consecutive

    # -- manual control ---------------------------------------------------------------------
    def force_open(self, now: float = 0.0) -> None:
        """Reject every call until :meth:`reset` (maintenance, a known-bad dependency)."""
        self._transition(BreakerState.FORCED_OPEN, now, "forced open")

    def force_closed(self, now: float = 0.0) -> None:
        """Admit every call and keep counting, but never trip, until :meth:`reset`."""
        self._transition(BreakerState.FORCED_CLOSED, now, "forced closed")

    def disable(self, now: float = 0.0) -> None:
        """Admit every call and count nothing, until :meth:`reset`."""
        self._transition(BreakerState.DISABLED, now, "disabled")

    def reset(self, now: float = 0.0) -> None:
        """Back to a fresh closed breaker: counters, growth and manual state cleared."""
        self._close(now, "reset")

    @property
    def is_manual(self) -> bool:
        """True in a manual state (such a breaker is never evicted from a registry)."""
        return self.state in _MANUAL

    # -- internals ----------------------------------------------------------------------------
    def _is_slow(self, duration: float) -> bool:
        return self._slow_after is not None and duration >= self._slow_after

    def _current(self, admit: Admit | None) -> bool:
        return admit is None or admit.generation == self._generation

    def _record(
        self, now: float, admit: Admit | None, *, failed: bool, slow: bool, host_down: bool = False
    ) -> None:
        state = self.state
        if state is BreakerState.HALF_OPEN:
            if self._current(admit):
                self._in_flight -= 1
                self._open(now, "trial call slow" if slow and not failed else "trial call failed")
            return
        if state is not BreakerState.CLOSED and state is not BreakerState.FORCED_CLOSED:
            return  # open, forced open, disabled: a late result changes nothing
        window = self._window
        window.add(now, _CALLS)
        if failed:
            window.add(now, _FAILURES)
        # The run of host-down failures ends at any answer from the host, even a 500.
        self._consecutive = self._consecutive + 1 if host_down else 0
        if slow:
            window.add(now, _SLOW)
        if state is BreakerState.FORCED_CLOSED:
            return
        reason = self._trip_reason(now)
        if reason is not None:
            self._open(now, reason)

    def _trip_reason(self, now: float) -> str | None:
        cfg = self.config
        if self._consecutive >= cfg.consecutive_failures:
            return f"{self._consecutive} consecutive host-down failures"
        calls, failures, slow = self._window.totals(now)
        if calls < cfg.minimum_calls:
            return None
        if failures / calls >= cfg.failure_ratio:
            return f"{failures}/{calls} calls failed in {cfg.window:g}s"
        if self._slow_after is not None and slow / calls >= (cfg.slow_call_ratio or 1.0):
            return f"{slow}/{calls} calls slower than {self._slow_after:g}s"
        return None

    def _open(self, now: float, reason: str) -> None:
        cfg = self.config
        self._openings += 1
        try:
            duration = cfg.open_duration * cfg.open_duration_multiplier ** (self._openings - 1)
        except OverflowError:
            duration = cfg.open_duration_max
        duration = min(cfg.open_duration_max, duration)
        if cfg.open_jitter:
            duration *= 1.0 - cfg.open_jitter * self._rng.random()
        self.open_until = now + duration
        self._open_for = duration
        self._transition(BreakerState.OPEN, now, reason, open_for=duration)

    def _close(self, now: float, reason: str) -> None:
        self._openings = 0
        self._transition(BreakerState.CLOSED, now, reason)

    def _transition(
        self, new: BreakerState, now: float, reason: str, *, open_for: float | None = None
    ) -> None:
        old = self.state
        self.state = new
        self._generation += 1
        self._admit = Admit(self._generation)
        self._trial_admit = Admit(self._generation, trial=True)
        self._in_flight = 0
        self._trial_successes = 0
        if new is not BreakerState.OPEN:
            self.open_until = 0.0
        if new is BreakerState.CLOSED or new is BreakerState.HALF_OPEN:
            self._consecutive = 0
            self._window.clear()
        if self._emitter.active:
            self._emitter.emit(BreakerStateChanged(self.key, old, new, reason, now, open_for))

    def __repr__(self) -> str:
        calls, failures, slow = self.failure_stats
        key = f" {self.key!r}" if self.key else ""
        return (
            f"<CircuitBreaker{key} [{self.state.value} | calls={calls} failures={failures} "
            f"slow={slow} consecutive={self._consecutive}]>"
        )


_MANUAL: Final = frozenset(
    {BreakerState.FORCED_OPEN, BreakerState.FORCED_CLOSED, BreakerState.DISABLED}
)


def _raising_failures(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` whose failed :class:`FlextResult` is raised, so the breaker counts it."""

    async def run(*args: Any, **kwargs: Any) -> Any:
        value = func(*args, **kwargs)
        if inspect.isawaitable(value):
            value = await value
        if isinstance(value, FlextResult):
            return value.value  # raises the failure's FlextApiError
        return value

    return run
