"""The client layer: ``FlextApiClient``, ``FlextApiSyncClient``, the plugin pipeline."""

from __future__ import annotations

from ._client import FlextApiClient as FlextApiClient
from ._client import RequestOptions as RequestOptions
from ._facade import FlextApi as FlextApi
from ._facade import create_flext_api as create_flext_api
from ._manager import PluginManager as PluginManager
from ._plugin import CallNext as CallNext
from ._plugin import FlextApiPlugin as FlextApiPlugin
from ._plugin import Middleware as Middleware
from ._request import USE_CLIENT_DEFAULT as USE_CLIENT_DEFAULT
from ._request import UseClientDefault as UseClientDefault
from ._sync import FlextApiSyncClient as FlextApiSyncClient
from ._sync import SyncStream as SyncStream

__all__ = [
    "CallNext",
    "FlextApi",
    "FlextApiClient",
    "FlextApiPlugin",
    "FlextApiSyncClient",
    "Middleware",
    "PluginManager",
    "RequestOptions",
    "SyncStream",
    "USE_CLIENT_DEFAULT",
    "UseClientDefault",
    "create_flext_api",
]
