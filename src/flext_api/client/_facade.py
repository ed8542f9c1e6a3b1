"""``create_flext_api()``: the small facade the FLEXT documentation uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._config import FlextApiConfig, ServerConfig
from ._client import FlextApiClient
from ._sync import FlextApiSyncClient

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["FlextApi", "create_flext_api"]


class FlextApi:
    """Makes clients (and, with the ``server`` extra, apps) from one configuration."""

    def __init__(self, config: FlextApiConfig | None = None) -> None:
        self.config = config or FlextApiConfig()

    def create_client(self, base_url: str | None = None, **kwargs: Any) -> FlextApiClient:
        """An async client with this facade's client settings (keywords override)."""
        kwargs.setdefault("config", self.config.client)
        return FlextApiClient(base_url, **kwargs)

    def create_sync_client(self, base_url: str | None = None, **kwargs: Any) -> FlextApiSyncClient:
        """A blocking client with this facade's client settings."""
        kwargs.setdefault("config", self.config.client)
        return FlextApiSyncClient(base_url, **kwargs)

    def create_app(self, config: ServerConfig | None = None, **kwargs: Any) -> FastAPI:
        """A production FastAPI app (needs the ``server`` extra)."""
        from ..server import create_fastapi_app

        return create_fastapi_app(config or self.config.server, **kwargs)

    def __repr__(self) -> str:
        return f"<FlextApi base_url={self.config.client.base_url!r}>"


def create_flext_api(config: FlextApiConfig | None = None) -> FlextApi:
    """The FLEXT entry point: ``create_flext_api().create_client(base_url)``."""
    return FlextApi(config)
