"""``BaseProtocol``: what a protocol plugs into :class:`ProtocolRegistry` with.

A protocol makes clients (:meth:`BaseProtocol.create_client`) and runs one request
(:meth:`BaseProtocol.execute_request`, returning a ``FlextResult``). Subclassing is
optional: any object (or class) with a ``create_client(config)`` method registers too,
as the product's original examples do.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from .._result import FlextResult

__all__ = ["BaseProtocol"]


class BaseProtocol(ABC):
    """A protocol beside HTTP: builds clients and executes requests.

    >>> class EchoProtocol(BaseProtocol):
    ...     name = "echo"
    ...     def create_client(self, config: dict[str, Any]) -> object:
    ...         return dict(config)
    ...     async def execute_request(self, request: object) -> FlextResult[object]:
    ...         return FlextResult.ok(request)
    """

    name: ClassVar[str] = ""

    @abstractmethod
    def create_client(self, config: dict[str, Any]) -> Any:
        """Create a protocol-specific client from a plain ``config`` mapping."""

    @abstractmethod
    async def execute_request(self, request: Any) -> FlextResult[Any]:
        """Execute one protocol-specific request."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Release what the protocol opened itself (clients it created on demand)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
