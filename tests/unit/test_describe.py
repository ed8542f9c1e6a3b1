"""``flext_api.testing.describe``: the client's pipeline, outermost first, with settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from flext_api import (
    BreakerConfig,
    CacheConfig,
    ClientConfig,
    HttpRequest,
    HttpResponse,
    PoolConfig,
    RateLimitConfig,
    RetryConfig,
    TimeoutConfig,
)
from flext_api.client import FlextApiClient, FlextApiPlugin
from flext_api.client.auth import BearerAuth
from flext_api.client.observability import LoggingPlugin
from flext_api.client.plugins import DeadlinePlugin, HedgingPlugin
from flext_api.testing import describe
from flext_api.transports import MockTransport


def _ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, request=request)


@pytest.fixture
async def client() -> AsyncIterator[FlextApiClient]:
    """A client with the default pipeline on a mock transport."""
    made = FlextApiClient("https://api.example", transport=MockTransport(_ok))
    yield made
    await made.aclose()


def _stage(stages: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(stage for stage in stages if stage["name"] == name)


def test_names_follow_client_describe_outermost_first(client: FlextApiClient) -> None:
    """The stages are those of FlextApiClient.describe(), in the same order."""
    names = [s["name"] for s in describe(client)]
    assert names == client.describe()
    resilience = [n for n in names if n in {"retry", "circuit_breaker"}]
    assert resilience == ["retry", "circuit_breaker"]
    assert names[-2:] == ["redirects", "transport:mock"]


def test_every_stage_has_name_type_and_settings(client: FlextApiClient) -> None:
    """Each stage is a dict with exactly name, type and settings."""
    stages = describe(client)
    assert all(set(stage) == {"name", "type", "settings"} for stage in stages)
    kinds = {s["name"]: s["type"] for s in stages}
    assert kinds["retry"] == "RetryPlugin"
    assert kinds["circuit_breaker"] == "CircuitBreakerPlugin"
    assert kinds["redirects"] == "redirects"
    assert kinds["transport:mock"] == "MockTransport"


async def test_retry_stage_shows_its_config_with_sorted_sets() -> None:
    """The retry stage lists max_retries, the statuses (sorted) and the backoff figures."""
    config = ClientConfig(
        retry=RetryConfig(max_retries=5, statuses=frozenset({503, 429}), backoff_max=2.0)
    )
    client = FlextApiClient(transport=MockTransport(_ok), config=config)
    settings = _stage(describe(client), "retry")["settings"]
    await client.aclose()
    assert settings["max_retries"] == 5
    assert settings["statuses"] == [429, 503]
    assert (settings["backoff_initial"], settings["backoff_max"]) == (0.5, 2.0)
    assert settings["methods"] == ["DELETE", "GET", "HEAD", "OPTIONS", "PUT", "TRACE"]


async def test_breaker_stage_shows_its_thresholds() -> None:
    """The circuit breaker stage lists its trip thresholds and open times."""
    config = ClientConfig(breaker=BreakerConfig(consecutive_failures=7, open_duration=2.0))
    client = FlextApiClient(transport=MockTransport(_ok), config=config)
    settings = _stage(describe(client), "circuit_breaker")["settings"]
    await client.aclose()
    assert settings["consecutive_failures"] == 7
    assert settings["failure_ratio"] == 0.5
    assert settings["open_duration"] == 2.0
    assert settings["half_open_calls"] == 3


async def test_deadline_stage_shows_total_and_enforce() -> None:
    """An explicit DeadlinePlugin shows its total and enforce flag."""
    config = ClientConfig(timeout=TimeoutConfig(total=7.5))
    client = FlextApiClient(
        transport=MockTransport(_ok), config=config, plugins=[DeadlinePlugin(config.timeout)]
    )
    assert _stage(describe(client), "deadline")["settings"] == {"total": 7.5, "enforce": True}
    await client.aclose()


def test_redirects_and_transport_settings(client: FlextApiClient) -> None:
    """Redirects show the redirect settings; the transport shows its pool figures."""
    stages = describe(client)
    assert _stage(stages, "redirects")["settings"] == {
        "follow_redirects": True,
        "max_redirects": 20,
    }
    pool = _stage(stages, "transport:mock")["settings"]["pool"]
    assert (pool["in_use"], pool["waiting"]) == (0, 0)
    assert "transport" not in pool


async def test_default_transport_pool_reflects_the_pool_config() -> None:
    """The default aiohttp transport reports the configured pool size."""
    client = FlextApiClient(
        config=ClientConfig(pool=PoolConfig(max_connections=7, max_keepalive=7))
    )
    transport = describe(client)[-1]
    await client.aclose()
    assert transport["name"] == "transport:aiohttp"
    assert transport["type"] == "AiohttpTransport"
    assert transport["settings"]["pool"]["max_connections"] == 7


async def test_rate_limit_stage_redacts_the_redis_password() -> None:
    """A shared limiter shows its kind, and the Redis URL without its password."""
    limit = RateLimitConfig(enabled=True, rate=5.0, redis_url="redis://app:s3cret@127.0.0.1:1/0")
    config = ClientConfig(rate_limit=limit)
    async with FlextApiClient(transport=MockTransport(_ok), config=config) as client:
        stages = describe(client)
    settings = _stage(stages, "rate_limit")["settings"]
    assert settings["rate"] == 5.0
    assert settings["limiter"] == "RedisRateLimiter"
    assert settings["redis_url"] == "redis://[REDACTED]@127.0.0.1:1/0"
    assert "s3cret" not in repr(stages)


async def test_auth_credentials_never_appear() -> None:
    """An auth stage is listed without its token."""
    auth = BearerAuth("tok-very-secret")
    client = FlextApiClient(transport=MockTransport(_ok), auth=auth)
    stages = describe(client)
    await client.aclose()
    kinds = [s["type"] for s in stages]
    assert kinds.index("BearerAuth") > kinds.index("CircuitBreakerPlugin")
    assert "tok-very-secret" not in repr(stages)


async def test_attempt_stage_names_its_plugin() -> None:
    """A plugin's per-attempt stage is listed innermost and points back to its plugin."""
    client = FlextApiClient(transport=MockTransport(_ok), plugins=[LoggingPlugin()])
    stages = describe(client)
    await client.aclose()
    assert stages[0]["name"] == "logging"
    attempt = _stage(stages, "logging[attempt]")
    assert attempt == {
        "name": "logging[attempt]",
        "type": "LoggingPlugin",
        "settings": {"attempt_stage_of": "logging"},
    }
    names = [s["name"] for s in stages]
    assert names.index("circuit_breaker") < names.index("logging[attempt]")
    assert names[-2:] == ["redirects", "transport:mock"]


async def test_plugin_settings_from_attributes_and_middlewares() -> None:
    """Hedging shows its delay and methods; a bare middleware has no settings."""

    async def stamp(request: HttpRequest, call_next: Any) -> Any:
        return await call_next(request)

    client = FlextApiClient(
        transport=MockTransport(_ok),
        plugins=[HedgingPlugin(0.25, methods=["get", "head"]), stamp],
        default_plugins=False,
    )
    stages = describe(client)
    await client.aclose()
    assert stages[0]["settings"] == {"delay": 0.25, "max_hedged": 1, "methods": ["GET", "HEAD"]}
    assert stages[1] == {"name": "stamp", "type": "function", "settings": {}}


async def test_secret_like_config_values_are_redacted() -> None:
    """Values under URL-like or secret-like keys of a config model are masked; tuples are lists."""

    class Vault(FlextApiPlugin):
        name = "vault"
        config = CacheConfig(
            options={"url": "redis://u:pw@h:1/0", "password": "hunter2", "nodes": ("a", "b")}
        )

    client = FlextApiClient(transport=MockTransport(_ok), plugins=[Vault()])
    options = _stage(describe(client), "vault")["settings"]["options"]
    await client.aclose()
    assert options == {
        "url": "redis://[REDACTED]@h:1/0",
        "password": "[REDACTED]",
        "nodes": ["a", "b"],
    }


async def test_a_plugin_unregistered_after_build_is_listed_without_type() -> None:
    """A stage whose plugin left the manager is still listed, with type None."""
    client = FlextApiClient(transport=MockTransport(_ok), plugins=[LoggingPlugin()])
    client.plugins.unregister("logging")
    stages = describe(client)
    await client.aclose()
    assert _stage(stages, "logging") == {"name": "logging", "type": None, "settings": {}}
    assert _stage(stages, "logging[attempt]")["type"] is None
