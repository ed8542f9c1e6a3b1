"""The public surface: `flext_api.__all__` is sorted, complete, and the pinned names import."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest

import flext_api

# DESIGN.md §2, verbatim.
PINNED = """
FlextResult, FlextApiError, ErrorCode,
FlextApiConfig, ClientConfig, RetryConfig, BreakerConfig, PoolConfig, TimeoutConfig, ServerConfig,
HttpRequest, HttpResponse,
FlextApiClient, FlextApiSyncClient, create_flext_api,
FlextApiPlugin, PluginManager,
RetryPlugin, CircuitBreakerPlugin, RateLimitPlugin, CachePlugin,
BearerAuth, ApiKeyAuth, BasicAuth, OAuth2ClientCredentials,
LoggingPlugin, MetricsPlugin, TracingPlugin,
BatchRequest, BatchResult, BatchProcessor,
AsyncSmartCache, CachedError, FlextApiCache,
create_fastapi_app,
FlextContainer, EventBus, Event, CircuitConfig,
"""
PINNED_NAMES = [n.strip() for n in PINNED.replace("\n", " ").split(",") if n.strip()]


def _public_globals(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in {"annotations", "importlib", "TYPE_CHECKING", "Any"}
    }


def test_all_is_sorted() -> None:
    """__all__ is in sorted order, without duplicates."""
    assert flext_api.__all__ == sorted(set(flext_api.__all__))


def test_all_is_complete() -> None:
    """__all__ lists exactly the eager public names plus the lazily resolved ones."""
    fresh = importlib.reload(flext_api)
    expected = _public_globals(fresh) | set(fresh._LAZY)
    assert set(fresh.__all__) == expected


def test_pinned_flext_middleware_names_import() -> None:
    """flext_api.middleware has the pinned FLEXT middleware base classes."""
    from flext_api.middleware import (
        FlextApiMiddleware,
        PerformanceMonitoringMiddleware,
        SecurityMiddleware,
    )

    assert issubclass(SecurityMiddleware, FlextApiMiddleware)
    assert issubclass(PerformanceMonitoringMiddleware, FlextApiMiddleware)


def test_every_pinned_name_imports() -> None:
    """Every name pinned in DESIGN.md §2 is exported and resolves to an object."""
    missing = [n for n in PINNED_NAMES if n not in flext_api.__all__]
    assert missing == []
    for name in PINNED_NAMES:
        assert getattr(flext_api, name) is not None, name


@pytest.mark.parametrize(
    "package",
    [
        "flext_api.client",
        "flext_api.transports",
        "flext_api.resilience",
        "flext_api.cache",
        "flext_api.discovery",
        "flext_api.client.auth",
        "flext_api.client.observability",
        "flext_api.client.plugins",
        "flext_api.client.batch",
        "flext_api.client.pagination",
        "flext_api.server",
        "flext_api.middleware",
        "flext_api.protocols",
        "flext_api.storage",
        "flext_api.composition",
    ],
)
def test_subpackage_all_is_sorted_and_resolves(package: str) -> None:
    """Each subpackage's __all__ is sorted and every name in it exists."""
    module = importlib.import_module(package)
    assert module.__all__ == sorted(set(module.__all__))
    for name in module.__all__:
        assert getattr(module, name) is not None


def test_unknown_attribute_raises_attribute_error() -> None:
    """A name that is not exported is an AttributeError, not a KeyError."""
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = flext_api.Nope


def test_import_needs_no_extras() -> None:
    """`import flext_api` loads none of the optional extras (server, http2, otel, cli)."""
    code = (
        "import sys, flext_api\n"
        "heavy = {'fastapi', 'httpx2', 'opentelemetry', 'typer', 'rich', 'redis', 'aiohttp'}\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lazily resolved name whose extra is missing raises an ImportError naming it."""
    monkeypatch.delitem(vars(flext_api), "create_fastapi_app", raising=False)
    monkeypatch.setitem(sys.modules, "flext_api.server", None)
    with pytest.raises(
        ImportError, match=r"needs the 'server' extra: pip install 'flext-api\[server\]'"
    ):
        _ = flext_api.create_fastapi_app
