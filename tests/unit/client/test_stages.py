"""Default stages: the HTTP cache stage is found through the flext_api.stages entry point."""

from __future__ import annotations

import pytest

from flext_api import CacheConfig, ClientConfig, ErrorCode, FlextApiError
from flext_api.cache import CachePlugin
from flext_api.client._stages import default_stages, stage_factory
from flext_api.testing import FakeClock


def test_caching_on_adds_the_cache_stage_from_the_entry_point() -> None:
    """cache.enabled puts the cache package's stage outside retry (DESIGN §2's order)."""
    clock = FakeClock()
    stages = default_stages(ClientConfig(cache=CacheConfig(enabled=True)), clock=clock)
    names = [type(stage).__name__ for stage in stages]
    assert names[-3:] == ["CachePlugin", "RetryPlugin", "CircuitBreakerPlugin"]
    cache = next(stage for stage in stages if isinstance(stage, CachePlugin))
    assert cache.own_clock is clock


def test_a_stage_nobody_provides_is_a_config_error() -> None:
    """An unknown stage name fails with CONFIG_ERROR naming the entry-point group."""
    with pytest.raises(FlextApiError, match=r"flext_api\.stages") as caught:
        stage_factory("no-such-stage")
    assert caught.value.code is ErrorCode.CONFIG_ERROR
