"""Latency hedging: start a parallel attempt when the first one is slow.

Tail latency is often one slow replica or one stuck connection; a second attempt
started after ``delay`` usually wins (Polly's hedging strategy, resilience4j-hedge,
Envoy's ``hedge_on_per_try_timeout``). No Python library offers it (research notes
§4.9). Rules, Polly's latency mode:

* attempt 0 starts at once; attempt ``k`` starts ``delay`` seconds after attempt
  ``k-1``, or at once when an earlier attempt has already failed, up to
  ``max_hedged`` extra attempts;
* the first success wins; every other attempt is cancelled, and one that finished
  with a value anyway is handed to ``discard`` (the plugin closes its response);
* when every attempt failed, the last failure is returned;
* no attempt starts at or after ``deadline`` (an instant on ``clock``): a hedge the
  delay would start past it is never started, nor is one after a failure once it has
  passed. Such an attempt could only fail, and would still count against the host's
  breaker and limiter.

Only idempotent requests may be hedged; that is the caller's check (the plugin's).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .._clock import Clock, get_clock
from .._errors import CancelledError, FlextApiError
from .._numbers import is_int
from .._result import FlextResult
from ._deadline import wait_any

__all__ = ["hedge"]

T = TypeVar("T")


def _result_of(task: asyncio.Task[FlextResult[T]]) -> FlextResult[T]:
    if task.cancelled():
        return FlextResult.fail(CancelledError("hedged attempt was cancelled"))
    exc = task.exception()
    if exc is not None:
        return FlextResult.fail(FlextApiError.wrap(exc))
    return task.result()


async def hedge(
    attempt: Callable[[int], Awaitable[FlextResult[T]]],
    *,
    delay: float,
    max_hedged: int = 1,
    clock: Clock | None = None,
    discard: Callable[[FlextResult[T]], Awaitable[None]] | None = None,
    on_hedge: Callable[[int, float], None] | None = None,
    deadline: float | None = None,
) -> FlextResult[T]:
    """Run ``attempt(0)``, hedge with ``attempt(1..max_hedged)``; the first success wins.

    ``on_hedge(k, elapsed)`` is called when attempt ``k`` starts. ``discard`` receives
    every finished result that is not returned (to release its response). ``deadline``
    (an instant on ``clock.monotonic()``, None: none) is when no attempt may start any
    more; attempt 0 is always started (refusing a late call is the deadline stage's job).
    """
    if not delay >= 0:  # NaN too: it would never hedge, re-arming its timer in a busy loop
        raise ValueError(f"hedging delay must be >= 0 seconds, got {delay!r}")
    if not is_int(max_hedged):
        raise TypeError(f"max_hedged must be an int, got {type(max_hedged).__name__}")
    if max_hedged < 0:
        raise ValueError(f"max_hedged must be >= 0, got {max_hedged!r}")
    if deadline is not None and math.isnan(deadline):
        raise ValueError("a deadline cannot be NaN")
    last_start = math.inf if deadline is None else deadline
    clock = get_clock(clock)
    start = clock.monotonic()
    tasks: list[asyncio.Task[FlextResult[T]]] = [asyncio.ensure_future(attempt(0))]
    pending = set(tasks)
    next_hedge_at = start + delay
    failures: list[FlextResult[T]] = []
    winner: FlextResult[T] | None = None
    try:
        while True:
            # ``pending`` is never empty here: a loop that leaves nothing running either
            # returned or started the next attempt.
            can_hedge = len(tasks) <= max_hedged
            # A hedge the delay would start at or past the deadline is never timed.
            timed = can_hedge and next_hedge_at < last_start
            timeout = max(0.0, next_hedge_at - clock.monotonic()) if timed else None
            await wait_any(pending, timeout, clock)
            failed_now = False
            for task in [t for t in tasks if t in pending and t.done()]:
                pending.discard(task)
                result = _result_of(task)
                if result.is_success:
                    winner = result
                    return result
                failures.append(result)
                failed_now = True
            now = clock.monotonic()
            # The event loop's timer may fire a hair early; then just wait again.
            due = failed_now or (timed and now >= next_hedge_at)
            if not (can_hedge and due and now < last_start):
                if not pending:
                    winner = failures.pop()
                    return winner
                continue
            index = len(tasks)
            if on_hedge is not None:
                on_hedge(index, now - start)
            task = asyncio.ensure_future(attempt(index))
            tasks.append(task)
            pending.add(task)
            next_hedge_at = now + delay
    finally:
        await _cancel_losers(pending, failures, winner, discard)


async def _cancel_losers(
    losers: set[asyncio.Task[FlextResult[T]]],
    finished: list[FlextResult[T]],
    winner: FlextResult[T] | None,
    discard: Callable[[FlextResult[T]], Awaitable[None]] | None,
) -> None:
    for task in losers:
        task.cancel()
    if losers:
        await asyncio.wait(losers)
    leftovers = [r for r in finished if r is not winner]
    # Reading every outcome keeps asyncio from logging "exception was never retrieved".
    leftovers.extend(
        task.result() for task in losers if not task.cancelled() and task.exception() is None
    )
    if discard is not None:
        for result in leftovers:
            await discard(result)
