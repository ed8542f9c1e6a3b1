"""FastAPI integration of :class:`FlextContainer`: ``Depends(inject(Service))``.

The container of an app is ``app.state.container`` (set by
``create_fastapi_app(container=...)``, the name the seed uses). Each request gets one
:class:`RequestScope` - a FastAPI dependency, so FastAPI caches it per request and closes
it (running the request services' cleanups) once the response has been sent.

    @app.get("/users/{user_id}")
    async def get_user(user_id: int, users: Annotated[UserService, Depends(inject(UserService))]):
        ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends
from starlette.requests import HTTPConnection

from .._errors import ConfigError
from ._container import FlextContainer, RequestScope

__all__ = ["container_of", "inject", "request_scope"]

T = TypeVar("T")


def container_of(app: Any) -> FlextContainer:
    """The :class:`FlextContainer` of ``app`` (ConfigError when it has none)."""
    container = getattr(app.state, "container", None)
    if not isinstance(container, FlextContainer):
        raise ConfigError(
            "this app has no FlextContainer: build it with create_fastapi_app(container=...) "
            "or set app.state.container"
        )
    return container


async def request_scope(connection: HTTPConnection) -> AsyncIterator[RequestScope]:
    """The request's scope of the app's container (a FastAPI dependency)."""
    async with container_of(connection.app).scope() as scope:
        yield scope


def inject(service_type: type[T]) -> Callable[..., Awaitable[T]]:
    """A FastAPI dependency resolving ``service_type`` in the request's scope."""

    async def dependency(scope: Annotated[RequestScope, Depends(request_scope)]) -> T:
        return await scope.aresolve(service_type)

    dependency.__name__ = f"inject_{getattr(service_type, '__name__', 'service')}"
    return dependency
