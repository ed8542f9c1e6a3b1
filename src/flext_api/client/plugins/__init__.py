"""Built-in resilience plugins: deadline, retry, circuit breaker, rate limit, bulkhead,
hedging and chaos, each a :class:`~flext_api.client._plugin.FlextApiPlugin` that drives
a policy of :mod:`flext_api.resilience`.

:func:`default_resilience_plugins` builds the stages a client config turns on, in
their pipeline order.
"""

from __future__ import annotations

from ._breaker import CircuitBreakerPlugin as CircuitBreakerPlugin
from ._breaker import counts_as_failure as counts_as_failure
from ._breaker import is_host_down as is_host_down
from ._bulkhead import BulkheadPlugin as BulkheadPlugin
from ._chaos import ChaosPlugin as ChaosPlugin
from ._common import KeyFunc as KeyFunc
from ._common import host_key as host_key
from ._deadline import DeadlinePlugin as DeadlinePlugin
from ._defaults import default_resilience_plugins as default_resilience_plugins
from ._hedging import HedgingPlugin as HedgingPlugin
from ._rate_limit import RateLimitPlugin as RateLimitPlugin
from ._retry import RetryPlugin as RetryPlugin

__all__ = [
    "BulkheadPlugin",
    "ChaosPlugin",
    "CircuitBreakerPlugin",
    "DeadlinePlugin",
    "HedgingPlugin",
    "KeyFunc",
    "RateLimitPlugin",
    "RetryPlugin",
    "counts_as_failure",
    "default_resilience_plugins",
    "host_key",
    "is_host_down",
]
