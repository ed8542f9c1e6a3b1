"""The default pipeline stages that ``ClientConfig`` turns on.

Order, outermost first (DESIGN §2): tracing -> metrics -> logging -> cache -> retry ->
circuit breaker -> rate limiter -> bulkhead. The deadline is set, and the server
request's X-Request-ID copied, when the client builds the request.
Auth is placed by the client, below these. A stage whose class the caller already
passed in ``plugins`` is left out, so passing a custom ``RetryPlugin(...)`` replaces the
default one instead of stacking two.

The HTTP cache stage lives in :mod:`flext_api.cache`, a layer above the client
(DESIGN §1), so the client does not import it: the cache package provides it under the
name ``cache`` in the ``flext_api.stages`` entry-point group (see ``pyproject.toml``),
and :func:`stage_factory` loads it the first time a config turns caching on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import TypeAlias, cast

from .._clock import Clock, get_clock
from .._config import ClientConfig
from .._errors import ConfigError
from ._plugin import Plugin

__all__ = ["STAGE_GROUP", "StageFactory", "default_stages", "stage_factory"]

#: Entry-point group of the default stages that packages above the client provide.
STAGE_GROUP = "flext_api.stages"

#: Builds a stage from the client's config and its one clock.
StageFactory: TypeAlias = Callable[[ClientConfig, Clock], Plugin]

_factories: dict[str, StageFactory] = {}


def stage_factory(name: str) -> StageFactory:
    """The factory registered as ``name`` in the ``flext_api.stages`` entry points."""
    factory = _factories.get(name)
    if factory is None:
        found = entry_points(group=STAGE_GROUP, name=name)
        if not found:
            raise ConfigError(
                f"no installed package provides the {name!r} client stage (entry point "
                f"group {STAGE_GROUP!r}); reinstall flext-api"
            )
        factory = _factories[name] = cast(StageFactory, next(iter(found)).load())
    return factory


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
    resilience: list[Plugin] = list(default_resilience_plugins(config, clock=clock))
    if config.cache.enabled:
        # Outside retry (the deadline is set when the request is built): a fresh hit
        # costs no attempt, and a retried attempt is not looked up again.
        resilience.insert(0, stage_factory("cache")(config, get_clock(clock)))
    stages.extend(resilience)
    present_types = {type(p) for p in present}
    return [stage for stage in stages if type(stage) not in present_types]
