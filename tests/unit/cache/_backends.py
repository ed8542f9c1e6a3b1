"""Test doubles for cache backends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flext_api import ErrorCode, FlextApiError
from flext_api.cache import BackendUsage, MemoryBackend
from flext_api.cache._backend import Stored


class DownBackend(MemoryBackend):
    """A backend whose every call fails the way a lost Redis does."""

    name = "down"

    def _fail(self) -> FlextApiError:
        return FlextApiError.from_code(ErrorCode.CONNECT_ERROR, "backend unreachable")

    async def get(self, key: str) -> Stored | None:
        raise self._fail()

    async def set(self, key: str, data: bytes, ttl: float | None) -> None:
        raise self._fail()

    async def delete(self, key: str) -> bool:
        raise self._fail()

    async def get_many(self, keys: Sequence[str]) -> dict[str, Stored]:
        raise self._fail()

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> None:
        raise self._fail()

    async def usage(self) -> BackendUsage:
        raise self._fail()
