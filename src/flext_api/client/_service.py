"""``ServiceClient``: the seed's per-service client, a thin wrapper over
``FlextApiClient(base_url="service://NAME", registry=registry)``.

It lives in the client layer (it needs the client) and is re-exported by
:mod:`flext_api.discovery` on first access.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Unpack

from .._models import HttpResponse
from .._result import FlextResult
from ._client import FlextApiClient, RequestOptions

if TYPE_CHECKING:
    from ..discovery import ServiceRegistry

__all__ = ["ServiceClient"]


class ServiceClient:
    """Calls one named service through a registry; every call returns a ``FlextResult``.

    >>> auth = ServiceClient(registry, "auth")                        # doctest: +SKIP
    >>> result = await auth.request("POST", "/verify", json={"token": token})
    >>> user = result.map(lambda r: r.json()).unwrap_or(None)

    Args:
        registry: the :class:`~flext_api.discovery.ServiceRegistry` to resolve through.
        service_name: the service to call.
        client_options: passed to :class:`FlextApiClient` (``config``, ``plugins``...).
    """

    def __init__(self, registry: ServiceRegistry, service_name: str, **client_options: Any) -> None:
        self.registry = registry
        self.service_name = service_name
        self.client = FlextApiClient(
            f"service://{service_name}", registry=registry, **client_options
        )

    async def request(
        self, method: str, path: str, **options: Unpack[RequestOptions]
    ) -> FlextResult[HttpResponse]:
        """Send ``method path`` to an instance of the service (retries go elsewhere)."""
        return await self.client.request(method, path, **options)

    async def aclose(self) -> None:
        """Close the underlying client's connections."""
        await self.client.aclose()

    async def __aenter__(self) -> ServiceClient:
        await self.client.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<ServiceClient {self.service_name!r} via {self.registry!r}>"
