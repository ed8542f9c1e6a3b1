"""Sans-IO resilience policies: retry, retry budget, circuit breaker, rate limiter,
bulkhead, deadline, hedging and chaos, each with an injected clock.

Nothing here imports an HTTP library: policies decide, and the client plugins in
:mod:`flext_api.client.plugins` perform what they decide. Every policy reports what it
does as frozen events to its own ``hooks`` and to the process-wide hooks registered
with :func:`add_event_hook`.

``RedisRateLimiter`` needs the ``redis`` extra and is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr as _lazy_getattr
from ._breaker import Admit as Admit
from ._breaker import BreakerState as BreakerState
from ._breaker import CircuitBreaker as CircuitBreaker
from ._breaker import Reject as Reject
from ._budget import RetryBudget as RetryBudget
from ._bulkhead import Bulkhead as Bulkhead
from ._chaos import ChaosPolicy as ChaosPolicy
from ._chaos import Fault as Fault
from ._chaos import FaultKind as FaultKind
from ._circuit import CircuitConfig as CircuitConfig
from ._deadline import Deadline as Deadline
from ._events import BreakerRejected as BreakerRejected
from ._events import BreakerStateChanged as BreakerStateChanged
from ._events import BulkheadRejected as BulkheadRejected
from ._events import ChaosInjected as ChaosInjected
from ._events import EventHook as EventHook
from ._events import HedgeStarted as HedgeStarted
from ._events import RateLimitThrottled as RateLimitThrottled
from ._events import RateLimitWaited as RateLimitWaited
from ._events import ResilienceEvent as ResilienceEvent
from ._events import RetryGaveUp as RetryGaveUp
from ._events import RetryScheduled as RetryScheduled
from ._events import add_event_hook as add_event_hook
from ._events import remove_event_hook as remove_event_hook
from ._hedging import hedge as hedge
from ._hints import parse_retry_after as parse_retry_after
from ._hints import rate_limit_remaining as rate_limit_remaining
from ._hints import server_delay_hint as server_delay_hint
from ._limiter import AsyncLimiter as AsyncLimiter
from ._limiter import RateLimiter as RateLimiter
from ._registry import BreakerRegistry as BreakerRegistry
from ._retry import AttemptRecord as AttemptRecord
from ._retry import GiveUp as GiveUp
from ._retry import GiveUpReason as GiveUpReason
from ._retry import Outcome as Outcome
from ._retry import Retry as Retry
from ._retry import RetryPolicy as RetryPolicy
from ._retry import RetryState as RetryState

if TYPE_CHECKING:
    from ._redis_limiter import RedisRateLimiter as RedisRateLimiter

__all__ = [
    "Admit",
    "AsyncLimiter",
    "AttemptRecord",
    "BreakerRegistry",
    "BreakerRejected",
    "BreakerState",
    "BreakerStateChanged",
    "Bulkhead",
    "BulkheadRejected",
    "ChaosInjected",
    "ChaosPolicy",
    "CircuitBreaker",
    "CircuitConfig",
    "Deadline",
    "EventHook",
    "Fault",
    "FaultKind",
    "GiveUp",
    "GiveUpReason",
    "HedgeStarted",
    "Outcome",
    "RateLimitThrottled",
    "RateLimitWaited",
    "RateLimiter",
    "RedisRateLimiter",
    "Reject",
    "ResilienceEvent",
    "Retry",
    "RetryBudget",
    "RetryGaveUp",
    "RetryPolicy",
    "RetryScheduled",
    "RetryState",
    "add_event_hook",
    "hedge",
    "parse_retry_after",
    "rate_limit_remaining",
    "remove_event_hook",
    "server_delay_hint",
]


__getattr__ = _lazy_getattr(__name__, {"RedisRateLimiter": ("._redis_limiter", "redis")})
