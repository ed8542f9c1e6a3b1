"""Driving an async generator from a blocking caller, on a sync client's loop.

Shared by the blocking faces of batching and pagination (``batch_sync``,
``SyncPaginator``): each step runs on :class:`FlextApiSyncClient`'s private loop.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._sync import FlextApiSyncClient

__all__ = ["drain_sync"]


def drain_sync(client: FlextApiSyncClient, agen: AsyncGenerator[Any, None]) -> Iterator[Any]:
    """Iterate an async generator from a blocking caller, on the sync client's loop.

    Closing the returned iterator (or leaving its ``for`` loop) closes ``agen`` there too.
    """

    async def step() -> Any:
        return await anext(agen)

    try:
        while True:
            try:
                yield client._run(step())
            except StopAsyncIteration:
                return
    finally:
        client._run(agen.aclose())
