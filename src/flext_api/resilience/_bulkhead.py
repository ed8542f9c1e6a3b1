"""Per-host concurrency cap with a bounded FIFO queue (bulkhead isolation).

One slow host must not take every connection and task of the process with it. The
bulkhead allows ``max_concurrent`` calls per key; up to ``max_queue`` more wait in
arrival order, each no longer than its deadline; beyond that a call fails at once with
``BULKHEAD_FULL`` (resilience4j's semaphore bulkhead with a wait queue; Polly's
``ConcurrencyLimiter`` with ``QueueLimit``; Envoy's ``max_requests`` /
``max_pending_requests``). ``asyncio.Semaphore`` has no queue bound and no way to say
how many wait, so the compartment is a counter plus a deque of futures: a released
permit is handed straight to the oldest waiter (no thundering herd, no barging), and a
waiter that gives up (deadline, cancel) takes its future out of the deque at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from .._clock import Clock, get_clock
from .._config import BulkheadConfig
from .._errors import BulkheadFullError
from .._numbers import is_int
from .._result import FlextResult
from ._deadline import wait_any
from ._events import BulkheadRejected, Emitter, EventHook
from ._keyed import IdleMap

__all__ = ["Bulkhead"]


class _Compartment:
    __slots__ = ("active", "queue", "queued")

    def __init__(self) -> None:
        self.active = 0
        self.queued = 0  # waiters (the deque's length: one leaving takes its entry out)
        self.queue: deque[asyncio.Future[None]] = deque()


def _idle(compartment: _Compartment) -> bool:
    return compartment.active == 0 and compartment.queued == 0


_GRANTED: FlextResult[float] = FlextResult.ok(0.0)


class Bulkhead:
    """``max_concurrent`` calls per key at once, ``max_queue`` more waiting in FIFO order.

    Use :meth:`acquire` then :meth:`release` (in a ``finally``) around each call.
    """

    __slots__ = ("_clock", "_emitter", "_keys", "max_concurrent", "max_queue")

    def __init__(
        self,
        max_concurrent: int = 50,
        max_queue: int = 100,
        *,
        idle_eviction: float = 600.0,
        clock: Clock | None = None,
        hooks: Sequence[EventHook] = (),
    ) -> None:
        # Counts: a NaN cap passes ``< 1`` and then admits nobody (every caller queues
        # until its deadline, or forever); a NaN queue size bounds nothing.
        for what, count in (("max_concurrent", max_concurrent), ("max_queue", max_queue)):
            if not is_int(count):
                raise TypeError(f"{what} must be an int, got {type(count).__name__}")
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent!r}")
        if max_queue < 0:
            raise ValueError(f"max_queue must be >= 0, got {max_queue!r}")
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self._clock = get_clock(clock)
        self._emitter = Emitter(hooks)
        self._keys: IdleMap[_Compartment] = IdleMap(
            lambda _key: _Compartment(), idle=idle_eviction, can_evict=_idle
        )

    @classmethod
    def from_config(
        cls,
        config: BulkheadConfig,
        *,
        clock: Clock | None = None,
        hooks: Sequence[EventHook] = (),
    ) -> Bulkhead:
        """A bulkhead with ``config``'s cap and queue size."""
        return cls(config.max_concurrent, config.max_queue, clock=clock, hooks=hooks)

    async def acquire(self, key: str, deadline: float | None = None) -> FlextResult[float]:
        """Take a permit for ``key``, queueing until ``deadline``; the result is the wait.

        Fails with ``BULKHEAD_FULL`` when the queue is full, or when the deadline passes
        in the queue.
        """
        clock = self._clock
        now = clock.monotonic()
        comp = self._keys.get(key, now)
        if comp.active < self.max_concurrent and not comp.queued:
            comp.active += 1
            return _GRANTED
        if comp.queued >= self.max_queue:
            return self._reject(key, comp, "queue full")
        if deadline is not None and now >= deadline:
            return self._reject(key, comp, "deadline passed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        comp.queue.append(future)
        comp.queued += 1
        try:
            await wait_any((future,), None if deadline is None else deadline - now, clock)
        except asyncio.CancelledError:
            self._abandon(key, comp, future)
            raise
        if not future.done():
            self._abandon(key, comp, future)
            return self._reject(key, comp, "deadline passed in the queue")
        return FlextResult.ok(clock.monotonic() - now)

    def _abandon(self, key: str, comp: _Compartment, future: asyncio.Future[None]) -> None:
        """A waiter leaves: drop its place, or pass on a permit it was just handed."""
        if future.done():
            self.release(key)
        else:
            future.cancel()
            comp.queued -= 1
            # Out of the deque now, not at the next release: while a hung host holds
            # every permit, callers giving up would pile up there without bound.
            comp.queue.remove(future)

    def release(self, key: str) -> None:
        """Return a permit of ``key``: the oldest live waiter gets it, else it is freed."""
        comp = self._keys.peek(key)
        if comp is None or comp.active <= 0:
            raise RuntimeError(f"bulkhead release for {key!r} without a matching acquire")
        queue = comp.queue
        while queue:
            future = queue.popleft()
            if not future.done():  # always so: a waiter leaving takes its entry with it
                future.set_result(None)  # the permit moves over; ``active`` is unchanged
                comp.queued -= 1
                return
        comp.active -= 1

    def _reject(self, key: str, comp: _Compartment, reason: str) -> FlextResult[float]:
        if self._emitter.active:
            self._emitter.emit(BulkheadRejected(key, comp.active, comp.queued, reason))
        return FlextResult.fail(
            BulkheadFullError(
                f"bulkhead for {key!r} is full ({comp.active}/{self.max_concurrent} running, "
                f"{comp.queued}/{self.max_queue} queued): {reason}",
                details={"key": key, "active": comp.active, "queued": comp.queued},
            )
        )

    def stats(self, key: str) -> tuple[int, int]:
        """``(running, queued)`` calls of ``key``."""
        comp = self._keys.peek(key)
        return (0, 0) if comp is None else (comp.active, comp.queued)

    def __repr__(self) -> str:
        active = queued = 0
        for comp in self._keys.values():
            active += comp.active
            queued += comp.queued
        return (
            f"<Bulkhead {self.max_concurrent}+{self.max_queue} per key "
            f"[{len(self._keys)} keys: {active} active, {queued} queued]>"
        )
