"""``BatchProcessor``: the list-in, list-out face of batching (the FLEXT seed's API).

It owns a :class:`FlextApiClient` for one base URL (or borrows one) and runs
:func:`run_batch` over a whole list, returning every result in input order. For
streams or inputs too big for a list, use ``client.batch(...)`` directly. Also here:
:func:`batch_sync`, the blocking twin of ``client.batch`` for
:class:`FlextApiSyncClient`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from contextlib import aclosing
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..._errors import ErrorCode
from ..._result import FlextResult
from .._client import FlextApiClient
from .._sync_iter import drain_sync
from ._batch import BatchItem, ProgressCallback, run_batch
from ._compat import adapt_progress
from ._models import BatchResult

if TYPE_CHECKING:
    from .._sync import FlextApiSyncClient

__all__ = ["BatchProcessor", "batch_sync"]


class BatchProcessor:
    """Run lists of requests against one API with bounded concurrency.

    >>> async with BatchProcessor("https://api.example", max_concurrent=10) as bp:  # doctest: +SKIP
    ...     results = await bp.process_batch([
    ...         {"id": "u1", "method": "GET", "path": "/users/1"},
    ...         BatchRequest("u2", "/users/2"),
    ...     ])
    ...     failed = [r for r in results if not r.success]

    Args:
        base_url: the API's base URL (paths in the requests are relative to it).
        max_concurrent: requests in flight at once.
        client: use this client instead of creating one (it is then not closed here).
        **client_options: keyword arguments for the :class:`FlextApiClient` created
            (``config``, ``headers``, ``auth``, ``transport``...).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        max_concurrent: int = 50,
        client: FlextApiClient | None = None,
        **client_options: Any,
    ) -> None:
        if type(max_concurrent) is not int or max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1 (an int), got {max_concurrent!r}")
        if client is not None and (base_url is not None or client_options):
            raise TypeError("pass either client= or base_url/client options, not both")
        self.max_concurrent = max_concurrent
        self._owns_client = client is None
        self.client = client if client is not None else FlextApiClient(base_url, **client_options)

    async def process_batch(
        self,
        requests: Iterable[BatchItem] | AsyncIterable[BatchItem],
        progress_callback: ProgressCallback | Callable[[int, int], object] | None = None,
        **options: Any,
    ) -> list[BatchResult]:
        """Run every request; return one :class:`BatchResult` per item, in input order.

        Items are :class:`BatchRequest` s or dicts with the same keys; a dict that is not
        a valid request gets an ``INVALID_REQUEST`` result. ``progress_callback``
        receives :class:`BatchProgress` snapshots, or - written as in the FLEXT guide,
        ``callback(completed, total)`` - one call per finished request. ``options`` go to
        :func:`~flext_api.client.run_batch` (``journal``, ``max_pause``, ``decode``...).
        """
        progress: ProgressCallback | None = None
        if progress_callback is not None:
            requests, progress, extra = adapt_progress(progress_callback, requests)
            options = {**extra, **options}
        batch = run_batch(
            self.client,
            requests,
            concurrency=self.max_concurrent,
            progress=progress,
            **options,
        )
        async with aclosing(batch) as results:
            collected = [result async for result in results]
        # Completion order is fastest; a list is sorted once at the end instead of
        # holding fast results back in an ordered run.
        collected.sort(key=_index)
        return collected

    def initialize(self) -> FlextResult[bool]:
        """The FLEXT guide's start-up check: ok(True) when the processor can run batches.

        Nothing needs awaiting before a batch (plugins start on first use, or with
        ``async with``); a closed client is a failure.
        """
        if self.client.is_closed:
            return FlextResult.fail("the processor's client is closed", code=ErrorCode.CONFIG_ERROR)
        return FlextResult.ok(True)

    async def aclose(self) -> None:
        """Close the client if this processor created it; idempotent."""
        if self._owns_client:
            await self.client.aclose()

    async def __aenter__(self) -> BatchProcessor:
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
        return (
            f"<BatchProcessor base_url={self.client.base_url!r} "
            f"max_concurrent={self.max_concurrent}>"
        )


def _index(result: BatchResult) -> int:
    return result.index if result.index is not None else -1


def batch_sync(
    client: FlextApiSyncClient, requests: Iterable[BatchItem], **options: Any
) -> Iterator[BatchResult]:
    """``FlextApiSyncClient.batch``: :func:`run_batch` for a blocking caller.

    The work runs on the sync client's loop; leaving the ``for`` loop early (or closing
    the iterator) stops the batch there and cancels its in-flight requests.
    """
    return drain_sync(client, run_batch(client.async_client, requests, **options))
