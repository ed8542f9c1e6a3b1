"""Resilience events (frozen payloads) and the hooks that receive them.

Every policy and plugin reports what it did as a small frozen, slotted dataclass:
a retry scheduled, a breaker changing state, a limiter wait, a bulkhead refusal. Hooks
are plain callables ``(event) -> None``; each policy accepts its own ``hooks`` and the
process-wide registry (:func:`add_event_hook`) lets observability plugins subscribe to
all of them at once (stamina's instrumentation hooks, Polly's ``On*`` callbacks).

A hook that raises is logged with its traceback and otherwise ignored: observability
must never change the outcome of a call. Emitters check :attr:`Emitter.active` first so
that, with no hook registered, the hot path builds no event at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import structlog

from .._errors import ErrorCode

__all__ = [
    "BreakerRejected",
    "BreakerStateChanged",
    "BulkheadRejected",
    "ChaosInjected",
    "Emitter",
    "EventHook",
    "HedgeStarted",
    "RateLimitThrottled",
    "RateLimitWaited",
    "ResilienceEvent",
    "RetryGaveUp",
    "RetryScheduled",
    "add_event_hook",
    "remove_event_hook",
]

_log = structlog.get_logger("flext_api.resilience")


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    """Attempt ``attempt`` failed and another one starts after ``delay`` seconds."""

    key: str
    method: str
    attempt: int
    delay: float
    status: int | None
    error_code: ErrorCode | None
    retry_after: float | None


@dataclass(frozen=True, slots=True)
class RetryGaveUp:
    """Retrying stopped after ``attempts`` attempts; ``reason`` is a ``GiveUpReason``."""

    key: str
    method: str
    attempts: int
    reason: str
    error_code: ErrorCode | None


@dataclass(frozen=True, slots=True)
class BreakerStateChanged:
    """A circuit breaker moved from ``old`` to ``new`` state (values of ``BreakerState``).

    ``open_for`` is the chosen open duration when ``new`` is ``"open"``, else None.
    """

    key: str
    old: str
    new: str
    reason: str
    at: float
    open_for: float | None


@dataclass(frozen=True, slots=True)
class BreakerRejected:
    """A call was refused by an open (or saturated half-open) breaker."""

    key: str
    state: str
    retry_after: float | None


@dataclass(frozen=True, slots=True)
class RateLimitWaited:
    """A call waited ``waited`` seconds in the rate limiter (0.0 is not reported)."""

    key: str
    waited: float


@dataclass(frozen=True, slots=True)
class RateLimitThrottled:
    """Server feedback slowed the limiter down: paused until ``paused_for`` elapses.

    ``rate_factor`` is the fraction of the configured rate now in force.
    """

    key: str
    paused_for: float
    rate_factor: float
    reason: str


@dataclass(frozen=True, slots=True)
class BulkheadRejected:
    """The concurrency cap and the queue of ``key`` were full (or the wait ran out)."""

    key: str
    active: int
    queued: int
    reason: str


@dataclass(frozen=True, slots=True)
class HedgeStarted:
    """A hedged (parallel) attempt number ``attempt`` started after ``after`` seconds."""

    key: str
    attempt: int
    after: float


@dataclass(frozen=True, slots=True)
class ChaosInjected:
    """The chaos policy injected ``fault`` (a short description) into a call."""

    key: str
    fault: str


ResilienceEvent: TypeAlias = (
    RetryScheduled
    | RetryGaveUp
    | BreakerStateChanged
    | BreakerRejected
    | RateLimitWaited
    | RateLimitThrottled
    | BulkheadRejected
    | HedgeStarted
    | ChaosInjected
)
EventHook: TypeAlias = Callable[[ResilienceEvent], None]

# Copy-on-write tuple: emitters iterate a snapshot, so a hook may unregister itself.
_global_hooks: tuple[EventHook, ...] = ()


def add_event_hook(hook: EventHook) -> None:
    """Subscribe ``hook`` to every resilience event of the process."""
    global _global_hooks
    if not callable(hook):
        raise TypeError(f"event hook must be callable, got {type(hook).__name__}")
    _global_hooks = (*_global_hooks, hook)


def remove_event_hook(hook: EventHook) -> None:
    """Unsubscribe ``hook``; raises ValueError when it was never added."""
    global _global_hooks
    hooks = list(_global_hooks)
    try:
        hooks.remove(hook)
    except ValueError:
        raise ValueError(f"event hook {hook!r} is not registered") from None
    _global_hooks = tuple(hooks)


class Emitter:
    """Delivers events to a policy's own hooks, then to the process-wide hooks."""

    __slots__ = ("_hooks",)

    def __init__(self, hooks: Sequence[EventHook] = ()) -> None:
        for hook in hooks:
            if not callable(hook):
                raise TypeError(f"event hook must be callable, got {type(hook).__name__}")
        self._hooks = tuple(hooks)

    @property
    def active(self) -> bool:
        """True when at least one hook would receive an event (check before building one)."""
        return bool(self._hooks or _global_hooks)

    def emit(self, event: ResilienceEvent) -> None:
        """Call every hook with ``event``; a hook that raises is logged and skipped."""
        for hook in (*self._hooks, *_global_hooks):
            try:
                hook(event)
            except Exception:  # noqa: BLE001 - observability must never break a call
                _log.exception(
                    "resilience event hook raised", hook=repr(hook), event_type=type(event).__name__
                )
