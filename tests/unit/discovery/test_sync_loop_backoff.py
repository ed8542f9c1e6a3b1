"""The registry's watch loop backs off when the store's change stream ends or breaks.

A change stream that ends at once (a proxy closing etcd's watch response, a store that
hangs up) must not turn the loop into list + re-watch as fast as the store answers, and
an unexpected error from a backend must not end the following of a service for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from flext_api._result import FlextResult
from flext_api.discovery import MemoryBackend, ServiceInstance, ServiceRegistry
from flext_api.discovery import _registry as registry_module


def _inst(k: int) -> ServiceInstance:
    return ServiceInstance(id=f"orders-{k}", name="orders", url=f"http://127.0.0.1:{9000 + k}")


class _HangUpBackend(MemoryBackend):
    """A shared backend whose change stream ends at once, every time."""

    kind = "hangup"
    shared = True

    def __init__(self) -> None:
        super().__init__()
        self.lists = 0
        self.watches = 0

    async def list(self, name: str) -> FlextResult[list[ServiceInstance]]:
        self.lists += 1
        await asyncio.sleep(0)
        return await super().list(name)

    async def changes(self, name: str) -> AsyncGenerator[None, None]:
        self.watches += 1
        await asyncio.sleep(0)
        for _ in ():  # ends at once, without a change
            yield None


class _CrashingBackend(_HangUpBackend):
    """list() raises something that is not a FlextApiError once, then answers."""

    kind = "crashing"

    async def list(self, name: str) -> FlextResult[list[ServiceInstance]]:
        self.lists += 1
        await asyncio.sleep(0)
        if self.lists == 1:
            raise AttributeError("'list' object has no attribute 'get'")  # a bad store reply
        return await MemoryBackend.list(self, name)

    async def changes(self, name: str) -> AsyncGenerator[None, None]:
        await asyncio.Event().wait()
        yield None  # pragma: no cover


async def _spin(turns: int = 200) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


async def test_a_change_stream_that_ends_is_rewatched_after_a_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A backoff no test run reaches: any second listing within the spin is a busy loop.
    monkeypatch.setattr(registry_module, "_RETRY_MIN", 3600.0)
    backend = _HangUpBackend()
    registry = ServiceRegistry(backend)
    await registry.register("orders", _inst(1))
    assert (await registry.get_instance("orders")).value.id == "orders-1"
    await _spin()
    lists, watches = backend.lists, backend.watches
    await registry.aclose()
    assert lists == 1 and watches == 1, (lists, watches)


async def test_an_unexpected_backend_error_does_not_end_following(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry_module, "_RETRY_MIN", 0.0)
    backend = _CrashingBackend()
    registry = ServiceRegistry(backend)
    await MemoryBackend.register(backend, _inst(1))  # written by another process
    registry.instances("orders")  # starts following
    for _ in range(200):
        await asyncio.sleep(0)
        if registry.instances("orders").value:
            break
    ids = [i.id for i in registry.instances("orders").value]
    stale = registry.stats()["services"]["orders"]["stale"]
    await registry.aclose()
    assert ids == ["orders-1"] and backend.lists >= 2
    assert stale is False
