"""flext-api: the HTTP foundation for Python services.

A resilient async/sync HTTP client whose calls return :class:`FlextResult`, a production
FastAPI app factory, and smart caching. Core types are imported eagerly; everything else
resolves lazily on first use, so ``import flext_api`` is cheap and needs no extras, and a
missing extra gives an ImportError that names it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._config import BreakerConfig as BreakerConfig
from ._config import BulkheadConfig as BulkheadConfig
from ._config import CacheConfig as CacheConfig
from ._config import ClientConfig as ClientConfig
from ._config import FlextApiConfig as FlextApiConfig
from ._config import PoolConfig as PoolConfig
from ._config import RateLimitConfig as RateLimitConfig
from ._config import RetryConfig as RetryConfig
from ._config import ServerConfig as ServerConfig
from ._config import TimeoutConfig as TimeoutConfig
from ._errors import ErrorCode as ErrorCode
from ._errors import FlextApiError as FlextApiError
from ._lazy import lazy_getattr as _lazy_getattr
from ._models import Headers as Headers
from ._models import HttpRequest as HttpRequest
from ._models import HttpResponse as HttpResponse
from ._result import FlextResult as FlextResult
from ._version import __version__ as __version__

# name -> (module, extra that provides its dependencies or None)
_LAZY: dict[str, tuple[str, str | None]] = {
    "USE_CLIENT_DEFAULT": ("flext_api.client", None),
    "FlextApiClient": ("flext_api.client", None),
    "FlextApiPlugin": ("flext_api.client", None),
    "FlextApiSyncClient": ("flext_api.client", None),
    "PluginManager": ("flext_api.client", None),
    "create_flext_api": ("flext_api._facade", None),
    "create_fastapi_app": ("flext_api.server", "server"),
    "BatchRequest": ("flext_api.client", None),
    "BatchResult": ("flext_api.client", None),
    "BatchProcessor": ("flext_api.client", None),
    "BatchProgress": ("flext_api.client", None),
    "Page": ("flext_api.client", None),
    "Paginator": ("flext_api.client", None),
    "PaginationError": ("flext_api.client", None),
    "PageNumber": ("flext_api.client", None),
    "Offset": ("flext_api.client", None),
    "Cursor": ("flext_api.client", None),
    "NextUrl": ("flext_api.client", None),
    "LinkHeader": ("flext_api.client", None),
    "AsyncSmartCache": ("flext_api.cache", None),
    "CachedError": ("flext_api.cache", None),
    "FlextApiCache": ("flext_api.cache", None),
    "CachePlugin": ("flext_api.cache", None),
    "BearerAuth": ("flext_api.client.auth", None),
    "ApiKeyAuth": ("flext_api.client.auth", None),
    "BasicAuth": ("flext_api.client.auth", None),
    "OAuth2ClientCredentials": ("flext_api.client.auth", None),
    "LoggingPlugin": ("flext_api.client.observability", None),
    "MetricsPlugin": ("flext_api.client.observability", "metrics"),
    "TracingPlugin": ("flext_api.client.observability", "otel"),
    "RetryPlugin": ("flext_api.client.plugins", None),
    "CircuitBreakerPlugin": ("flext_api.client.plugins", None),
    "RateLimitPlugin": ("flext_api.client.plugins", None),
    "DeadlinePlugin": ("flext_api.client.plugins", None),
    "BulkheadPlugin": ("flext_api.client.plugins", None),
    "HedgingPlugin": ("flext_api.client.plugins", None),
    "ChaosPlugin": ("flext_api.client.plugins", None),
    "RetryPolicy": ("flext_api.resilience", None),
    "RetryBudget": ("flext_api.resilience", None),
    "CircuitBreaker": ("flext_api.resilience", None),
    "BreakerRegistry": ("flext_api.resilience", None),
    "RateLimiter": ("flext_api.resilience", None),
    "Bulkhead": ("flext_api.resilience", None),
    "Deadline": ("flext_api.resilience", None),
    "add_event_hook": ("flext_api.resilience", None),
    "CircuitConfig": ("flext_api.resilience", None),
    "Event": ("flext_api.composition", None),
    "EventBus": ("flext_api.composition", None),
    "FlextContainer": ("flext_api.composition", None),
    "remove_event_hook": ("flext_api.resilience", None),
    # The FLEXT guides' surface (see docs/flext-compat.md).
    "get_logger": ("flext_api._logger", None),
    "register_enricher": ("flext_api._logger", None),
    "remove_enricher": ("flext_api._logger", None),
    "flush_enrichers": ("flext_api._logger", None),
    "FlextDictClient": ("flext_api.client", None),
}

if TYPE_CHECKING:
    from ._facade import create_flext_api as create_flext_api
    from ._logger import flush_enrichers as flush_enrichers
    from ._logger import get_logger as get_logger
    from ._logger import register_enricher as register_enricher
    from ._logger import remove_enricher as remove_enricher
    from .cache import AsyncSmartCache as AsyncSmartCache
    from .cache import CachedError as CachedError
    from .cache import CachePlugin as CachePlugin
    from .cache import FlextApiCache as FlextApiCache
    from .client import USE_CLIENT_DEFAULT as USE_CLIENT_DEFAULT
    from .client import BatchProcessor as BatchProcessor
    from .client import BatchProgress as BatchProgress
    from .client import BatchRequest as BatchRequest
    from .client import BatchResult as BatchResult
    from .client import Cursor as Cursor
    from .client import FlextApiClient as FlextApiClient
    from .client import FlextApiPlugin as FlextApiPlugin
    from .client import FlextApiSyncClient as FlextApiSyncClient
    from .client import FlextDictClient as FlextDictClient
    from .client import LinkHeader as LinkHeader
    from .client import NextUrl as NextUrl
    from .client import Offset as Offset
    from .client import Page as Page
    from .client import PageNumber as PageNumber
    from .client import PaginationError as PaginationError
    from .client import Paginator as Paginator
    from .client import PluginManager as PluginManager
    from .client.auth import ApiKeyAuth as ApiKeyAuth
    from .client.auth import BasicAuth as BasicAuth
    from .client.auth import BearerAuth as BearerAuth
    from .client.auth import OAuth2ClientCredentials as OAuth2ClientCredentials
    from .client.observability import LoggingPlugin as LoggingPlugin
    from .client.observability import MetricsPlugin as MetricsPlugin
    from .client.observability import TracingPlugin as TracingPlugin
    from .client.plugins import BulkheadPlugin as BulkheadPlugin
    from .client.plugins import ChaosPlugin as ChaosPlugin
    from .client.plugins import CircuitBreakerPlugin as CircuitBreakerPlugin
    from .client.plugins import DeadlinePlugin as DeadlinePlugin
    from .client.plugins import HedgingPlugin as HedgingPlugin
    from .client.plugins import RateLimitPlugin as RateLimitPlugin
    from .client.plugins import RetryPlugin as RetryPlugin
    from .composition import Event as Event
    from .composition import EventBus as EventBus
    from .composition import FlextContainer as FlextContainer
    from .resilience import BreakerRegistry as BreakerRegistry
    from .resilience import Bulkhead as Bulkhead
    from .resilience import CircuitBreaker as CircuitBreaker
    from .resilience import CircuitConfig as CircuitConfig
    from .resilience import Deadline as Deadline
    from .resilience import RateLimiter as RateLimiter
    from .resilience import RetryBudget as RetryBudget
    from .resilience import RetryPolicy as RetryPolicy
    from .resilience import add_event_hook as add_event_hook
    from .resilience import remove_event_hook as remove_event_hook
    from .server import create_fastapi_app as create_fastapi_app

__all__ = [
    "ApiKeyAuth",
    "AsyncSmartCache",
    "BasicAuth",
    "BatchProcessor",
    "BatchProgress",
    "BatchRequest",
    "BatchResult",
    "BearerAuth",
    "BreakerConfig",
    "BreakerRegistry",
    "Bulkhead",
    "BulkheadConfig",
    "BulkheadPlugin",
    "CacheConfig",
    "CachePlugin",
    "CachedError",
    "ChaosPlugin",
    "CircuitBreaker",
    "CircuitBreakerPlugin",
    "CircuitConfig",
    "ClientConfig",
    "Cursor",
    "Deadline",
    "DeadlinePlugin",
    "ErrorCode",
    "Event",
    "EventBus",
    "FlextApiCache",
    "FlextApiClient",
    "FlextApiConfig",
    "FlextApiError",
    "FlextApiPlugin",
    "FlextApiSyncClient",
    "FlextContainer",
    "FlextDictClient",
    "FlextResult",
    "Headers",
    "HedgingPlugin",
    "HttpRequest",
    "HttpResponse",
    "LinkHeader",
    "LoggingPlugin",
    "MetricsPlugin",
    "NextUrl",
    "OAuth2ClientCredentials",
    "Offset",
    "Page",
    "PageNumber",
    "PaginationError",
    "Paginator",
    "PluginManager",
    "PoolConfig",
    "RateLimitConfig",
    "RateLimitPlugin",
    "RateLimiter",
    "RetryBudget",
    "RetryConfig",
    "RetryPlugin",
    "RetryPolicy",
    "ServerConfig",
    "TimeoutConfig",
    "TracingPlugin",
    "USE_CLIENT_DEFAULT",
    "add_event_hook",
    "create_fastapi_app",
    "create_flext_api",
    "flush_enrichers",
    "get_logger",
    "register_enricher",
    "remove_enricher",
    "remove_event_hook",
]


__getattr__ = _lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
