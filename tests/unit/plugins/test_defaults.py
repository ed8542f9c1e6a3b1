"""default_resilience_plugins and the cost of the default pipeline."""

from __future__ import annotations

from flext_api import (
    BreakerConfig,
    BulkheadConfig,
    ClientConfig,
    ErrorCode,
    RateLimitConfig,
    RetryConfig,
)
from flext_api.client._plugin import build_pipeline
from flext_api.client.plugins import (
    BulkheadPlugin,
    CircuitBreakerPlugin,
    DeadlinePlugin,
    RateLimitPlugin,
    RetryPlugin,
    default_resilience_plugins,
)
from flext_api.testing import FakeClock

from ._fakes import Upstream, get


def test_default_pipeline_order() -> None:
    """Defaults: retry, breaker; rate limit and bulkhead are off; the client sets the deadline."""
    plugins = default_resilience_plugins()
    assert [type(p) for p in plugins] == [RetryPlugin, CircuitBreakerPlugin]


def test_everything_on_in_order() -> None:
    """With every stage on the order is retry, breaker, rate limit, bulkhead."""
    config = ClientConfig(
        rate_limit=RateLimitConfig(enabled=True), bulkhead=BulkheadConfig(enabled=True)
    )
    plugins = default_resilience_plugins(config, clock=FakeClock())
    assert [p.name for p in plugins] == [
        "retry",
        "circuit_breaker",
        "rate_limit",
        "bulkhead",
    ]
    assert isinstance(plugins[2], RateLimitPlugin) and isinstance(plugins[3], BulkheadPlugin)


def test_disabled_stages_are_left_out() -> None:
    """Turning retry off leaves it out; rate limit alone comes without a bulkhead."""
    plugins = default_resilience_plugins(ClientConfig(retry=RetryConfig(enabled=False)))
    assert [type(p) for p in plugins] == [CircuitBreakerPlugin]
    limited = default_resilience_plugins(
        ClientConfig(breaker=BreakerConfig(enabled=False), rate_limit=RateLimitConfig(enabled=True))
    )
    assert [type(p) for p in limited] == [RetryPlugin, RateLimitPlugin]


async def test_default_pipeline_end_to_end() -> None:
    """Through the default stages (with DeadlinePlugin, as outside a client), a flaky host
    is retried within the deadline the plugin sets."""
    clock = FakeClock(start=0.0)
    config = ClientConfig(retry=RetryConfig(jitter=False))
    upstream = Upstream([ErrorCode.CONNECT_ERROR, 503, 200])
    plugins = [
        DeadlinePlugin(config.timeout, clock=clock),
        *default_resilience_plugins(config, clock=clock),
    ]
    pipeline = build_pipeline(plugins, upstream)
    request = get()
    result = await pipeline(request)
    assert result.value.attempts == 3
    assert request.deadline == 60.0
    assert clock.sleeps == [0.5, 1.0]
