"""``RegistryBackend``: where a registry keeps its instances; ``MemoryBackend``, the default.

A backend stores instances per service name and tells watchers when a service changes.
Every call returns a ``FlextResult``; a failure means the store could not be reached or
answered nonsense, never "no instances" (that is an empty list). The registry above it
keeps serving its last known instances while a backend fails.

Backends that share state between processes (Redis, etcd) also keep the instances this
process registered alive (heartbeats, lease keep-alives) until :meth:`aclose`, so a
crashed process's instances expire by themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Protocol, runtime_checkable

from .._result import FlextResult
from ._instance import ServiceInstance

__all__ = ["MemoryBackend", "RegistryBackend"]


@runtime_checkable
class RegistryBackend(Protocol):
    """The storage seam of :class:`~flext_api.discovery.ServiceRegistry`."""

    #: Short name for logs, metrics and ``describe()`` (``"memory"``, ``"redis"``...).
    kind: str
    #: True when other processes may change the store (the registry then watches it).
    shared: bool

    async def register(self, instance: ServiceInstance) -> FlextResult[None]:
        """Store ``instance`` (replacing one with the same name and id) and keep it alive."""
        ...

    async def unregister(self, name: str, instance_id: str) -> FlextResult[None]:
        """Remove an instance; removing an unknown one succeeds."""
        ...

    async def list(self, name: str) -> FlextResult[list[ServiceInstance]]:
        """Every live instance of ``name`` (an empty list when there is none)."""
        ...

    def changes(self, name: str) -> AsyncGenerator[None, None]:
        """Yields whenever ``name`` may have changed (then call :meth:`list`).

        A backend that cannot push changes yields on a timer. Raises ``FlextApiError``
        when the store cannot be reached; the registry then retries with backoff.
        """
        ...

    async def aclose(self) -> None:
        """Stop keep-alives and release connections (instances then expire by TTL)."""
        ...


class MemoryBackend:
    """Instances in this process's memory: the default, for one process and tests."""

    kind = "memory"
    shared = False

    def __init__(self) -> None:
        self._services: dict[str, dict[str, ServiceInstance]] = {}
        self._events: dict[str, asyncio.Event] = {}

    def _notify(self, name: str) -> None:
        event = self._events.pop(name, None)
        if event is not None:
            event.set()

    async def register(self, instance: ServiceInstance) -> FlextResult[None]:
        self._services.setdefault(instance.name, {})[instance.id] = instance
        self._notify(instance.name)
        return FlextResult.ok(None)

    async def unregister(self, name: str, instance_id: str) -> FlextResult[None]:
        service = self._services.get(name)
        if service is not None and service.pop(instance_id, None) is not None:
            self._notify(name)
        return FlextResult.ok(None)

    async def list(self, name: str) -> FlextResult[list[ServiceInstance]]:
        return FlextResult.ok(list(self._services.get(name, {}).values()))

    async def changes(self, name: str) -> AsyncGenerator[None, None]:
        while True:
            event = self._events.get(name)
            if event is None:
                event = self._events[name] = asyncio.Event()
            await event.wait()
            yield None

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        count = sum(len(s) for s in self._services.values())
        return f"<MemoryBackend [{len(self._services)} services, {count} instances]>"
