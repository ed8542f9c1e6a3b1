"""``create_flext_api()``: the small facade the FLEXT documentation uses.

It sits above the client and the server (it makes both), so it lives at the top of the
package, beside ``__init__``, not inside either layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._config import FlextApiConfig, ServerConfig
from ._result import FlextResult
from .client import FlextApiClient, FlextApiSyncClient
from .client._dict_client import FlextDictClient, client_from_dict

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .client._plugin import Plugin

__all__ = ["FlextApi", "create_flext_api"]


class FlextApi:
    """Makes clients (and, with the ``server`` extra, apps) from one configuration."""

    def __init__(self, config: FlextApiConfig | None = None) -> None:
        # load(): a bad FLEXT_API_* environment variable is a ConfigError naming it.
        self.config = config or FlextApiConfig.load()

    def create_client(self, base_url: str | None = None, **kwargs: Any) -> FlextApiClient:
        """An async client with this facade's client settings (keywords override)."""
        kwargs.setdefault("config", self.config.client)
        return FlextApiClient(base_url, **kwargs)

    def create_sync_client(self, base_url: str | None = None, **kwargs: Any) -> FlextApiSyncClient:
        """A blocking client with this facade's client settings."""
        kwargs.setdefault("config", self.config.client)
        return FlextApiSyncClient(base_url, **kwargs)

    def flext_api_create_client(self, settings: Mapping[str, Any]) -> FlextResult[FlextDictClient]:
        """The FLEXT guides' client: blocking, its results hold dicts (see ``FlextDictClient``).

        ``settings`` holds :class:`~flext_api.ClientConfig` fields (``base_url``,
        ``timeout``, ``headers``...) over this facade's client settings; an unknown key
        or a bad value is a ``CONFIG_ERROR`` failure.
        """
        return client_from_dict(settings, base=self.config.client)

    def flext_api_create_client_with_plugins(
        self, settings: Mapping[str, Any], plugins: Sequence[Plugin]
    ) -> FlextResult[FlextDictClient]:
        """:meth:`flext_api_create_client` with ``plugins`` (the first listed is outermost)."""
        return client_from_dict(settings, plugins, base=self.config.client)

    def create_app(self, config: ServerConfig | None = None, **kwargs: Any) -> FastAPI:
        """A production FastAPI app (needs the ``server`` extra)."""
        from .server import create_fastapi_app

        return create_fastapi_app(config or self.config.server_config(), **kwargs)

    def __repr__(self) -> str:
        return f"<FlextApi base_url={self.config.client.base_url!r}>"


def create_flext_api(config: FlextApiConfig | None = None) -> FlextApi:
    """The FLEXT entry point: ``create_flext_api().create_client(base_url)``."""
    return FlextApi(config)
