"""The public surface of flext_api.resilience and flext_api.client.plugins."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

import flext_api.client.plugins as plugins
import flext_api.resilience as resilience


@pytest.mark.parametrize("module", [resilience, plugins])
def test_all_is_sorted_and_complete(module: ModuleType) -> None:
    """__all__ is sorted, and lists every public name the package defines."""
    exported = module.__all__
    assert exported == sorted(exported)
    public = {
        name
        for name in vars(module)
        if not name.startswith("_")
        and not isinstance(getattr(module, name), ModuleType)
        and name not in {"annotations", "importlib", "TYPE_CHECKING", "Any"}
    }
    assert public <= set(exported)
    for name in exported:
        assert getattr(module, name) is not None


def test_redis_limiter_resolves_lazily() -> None:
    """RedisRateLimiter is importable from the package on first use."""
    module = importlib.import_module("flext_api.resilience._redis_limiter")
    assert resilience.RedisRateLimiter is module.RedisRateLimiter


def test_unknown_attribute_is_an_attribute_error() -> None:
    """A missing name raises AttributeError naming the module."""
    with pytest.raises(AttributeError, match=r"flext_api\.resilience"):
        resilience.NoSuchThing  # noqa: B018


def test_missing_redis_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without redis-py, the error says which extra to install."""
    monkeypatch.delitem(vars(resilience), "RedisRateLimiter", raising=False)

    def refuse(name: str, package: str | None = None) -> ModuleType:
        raise ImportError("No module named 'redis'")

    monkeypatch.setattr(importlib, "import_module", refuse)
    with pytest.raises(ImportError, match=r"flext-api\[redis\]"):
        resilience.__getattr__("RedisRateLimiter")
