"""The default pipeline stages that ``ClientConfig`` turns on.

Order, outermost first (DESIGN §2): tracing -> metrics -> logging -> cache -> retry ->
circuit breaker -> rate limiter -> bulkhead. The deadline is set, and the server
request's X-Request-ID copied, when the client builds the request.
Auth is placed by the client, below these. A stage whose class the caller already
passed in ``plugins`` is left out, so passing a custom ``RetryPlugin(...)`` replaces the
default one instead of stacking two.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._clock import Clock
from .._config import ClientConfig
from ._plugin import Plugin

__all__ = ["default_stages"]


def default_stages(
    config: ClientConfig, *, clock: Clock | None = None, present: Sequence[Plugin] = ()
) -> list[Plugin]:
    """Instances of the default stages enabled in ``config``, minus those in ``present``."""
    from .observability import LoggingPlugin
    from .plugins import default_resilience_plugins

    stages: list[Plugin] = []
    if config.tracing:
        from .observability import TracingPlugin

        stages.append(TracingPlugin())
    if config.metrics:
        from .observability import MetricsPlugin

        stages.append(MetricsPlugin())
    if config.logging:
        stages.append(LoggingPlugin())
    resilience = list(default_resilience_plugins(config, clock=clock))
    if config.cache.enabled:
        from ..cache import CachePlugin

        # Just inside the deadline stage, outside retry: a fresh hit costs no attempt.
        resilience.insert(
            1 if resilience else 0, CachePlugin.from_config(config.cache, clock=clock)
        )
    stages.extend(resilience)
    present_types = {type(p) for p in present}
    return [stage for stage in stages if type(stage) not in present_types]
