"""The default pipeline stages that ``ClientConfig`` turns on.

Order, outermost first (DESIGN §2): deadline -> cache -> retry -> circuit breaker ->
rate limiter -> bulkhead. Observability plugins and auth are placed by the client.
A stage whose class the caller already passed in ``plugins`` is left out, so passing a
custom ``RetryPlugin(...)`` replaces the default one instead of stacking two.
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
    from .plugins import default_resilience_plugins

    stages: list[Plugin] = list(default_resilience_plugins(config, clock=clock))
    if config.cache.enabled:
        from ..cache import CachePlugin

        position = 1 if stages else 0  # just inside the deadline stage
        stages.insert(position, CachePlugin.from_config(config.cache, clock=clock))
    present_types = {type(p) for p in present}
    return [stage for stage in stages if type(stage) not in present_types]
