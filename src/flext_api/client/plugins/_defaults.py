"""The default resilience stages of a client, built from its :class:`~flext_api.ClientConfig`.

Order, outermost first, and why (Polly's standard HTTP pipeline and Envoy's router,
adapted; see docs/resilience.md):

0. The deadline: set by the client when it builds the request (``timeout.total``),
   so it covers everything below, retries included; the transports enforce it.
   ``DeadlinePlugin`` does the same for pipelines used without the client.
1. ``RetryPlugin`` - retries whole attempts; sees the breaker's and limiter's verdicts
   (``CIRCUIT_OPEN`` and ``RATE_LIMITED`` are never retried).
2. ``CircuitBreakerPlugin`` - per attempt, so each retry is one observation of the
   host, and an open breaker refuses before a rate-limit slot is spent.
3. ``RateLimitPlugin`` - per attempt: a retry is a request the server counts too.
4. ``BulkheadPlugin`` - innermost: a permit is held only while a call is in flight.

Stages turned off in the config are left out (rate limit and bulkhead are off by
default).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..._clock import Clock
from ..._config import ClientConfig
from ...resilience import EventHook
from .._plugin import FlextApiPlugin
from ._breaker import CircuitBreakerPlugin
from ._bulkhead import BulkheadPlugin
from ._rate_limit import RateLimitPlugin
from ._retry import RetryPlugin

__all__ = ["default_resilience_plugins"]


def default_resilience_plugins(
    config: ClientConfig | None = None,
    *,
    clock: Clock | None = None,
    hooks: Sequence[EventHook] = (),
) -> list[FlextApiPlugin]:
    """The enabled resilience plugins for ``config``, outermost first."""
    config = config if config is not None else ClientConfig()
    # No DeadlinePlugin by default: FlextApiClient sets request.deadline when it builds
    # the request (from timeout.total, per-request overrides included), the transports
    # hold every attempt to it, and every stage that waits (retry backoff, Retry-After,
    # limiter, bulkhead) measures against it. Pass DeadlinePlugin(...) explicitly to use
    # other clients' requests or to enforce the deadline around other plugins too.
    plugins: list[FlextApiPlugin] = []
    if config.retry.enabled:
        plugins.append(RetryPlugin(config.retry, clock=clock, hooks=hooks))
    if config.breaker.enabled:
        plugins.append(CircuitBreakerPlugin(config.breaker, clock=clock, hooks=hooks))
    if config.rate_limit.enabled:
        plugins.append(RateLimitPlugin(config.rate_limit, clock=clock, hooks=hooks))
    if config.bulkhead.enabled:
        plugins.append(BulkheadPlugin(config.bulkhead, clock=clock, hooks=hooks))
    return plugins
