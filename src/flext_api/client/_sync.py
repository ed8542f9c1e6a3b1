"""``FlextApiSyncClient``: the async client's surface, blocking, for scripts and notebooks.

One private event loop runs in one daemon thread per client; every call is handed to it
with ``run_coroutine_threadsafe``. That makes the client safe to share between threads
(calls run concurrently on the loop, exactly as async callers would) and usable inside
a notebook whose own loop is already running. ``close()`` closes the pool, stops the
loop and joins the thread, so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from .._errors import ErrorCode, FlextApiError
from .._models import HttpResponse
from .._result import FlextResult
from ._client import FlextApiClient, RequestOptions

if TYPE_CHECKING:
    from .batch._batch import BatchOptions
    from .batch._models import BatchResult
    from .pagination._paginate import PaginateOptions, SyncPaginator

__all__ = ["FlextApiSyncClient", "SyncStream"]

T = TypeVar("T")


class FlextApiSyncClient:
    """Blocking twin of :class:`FlextApiClient`; accepts the same arguments.

    >>> with FlextApiSyncClient("https://api.example") as client:   # doctest: +SKIP
    ...     result = client.get("/items")
    """

    def __init__(self, base_url: str | None = None, **kwargs: Any) -> None:
        self._client = FlextApiClient(base_url, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._serve, name="flext-api-sync-client", daemon=True
        )
        self._thread.start()
        self._lock = threading.Lock()
        self._closed = False
        # Set (under the lock) once the loop is told to stop: nothing is handed to it after.
        self._stopped = False
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._run(self._client.open())

    @property
    def async_client(self) -> FlextApiClient:
        """The async client doing the work (use it only from its own loop)."""
        return self._client

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("FlextApiSyncClient cannot be called from its own event loop")
        with self._lock:
            if self._stopped:
                # The loop is stopped or closed: the work would never run (a caller
                # waiting on it would hang, or get "Event loop is closed").
                coro.close()
                raise _closed_error()
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
            self._pending.add(future)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            if self._stopped:  # cancelled by close(): the client is closed
                raise _closed_error() from None
            raise
        except BaseException:
            # KeyboardInterrupt in the caller: stop the work on the loop too.
            future.cancel()
            raise
        finally:
            with self._lock:
                self._pending.discard(future)

    def request(
        self, method: str, url: str, **options: Unpack[RequestOptions]
    ) -> FlextResult[HttpResponse]:
        """Send a request; blocks until the result is there."""
        if self._closed:
            return FlextResult.fail("client is closed", code=ErrorCode.INVALID_REQUEST)
        return self._run(self._client.request(method, url, **options))

    def get(self, url: str, **options: Unpack[RequestOptions]) -> FlextResult[HttpResponse]:
        """GET ``url``."""
        return self.request("GET", url, **options)

    def head(self, url: str, **options: Unpack[RequestOptions]) -> FlextResult[HttpResponse]:
        """HEAD ``url``."""
        return self.request("HEAD", url, **options)

    def options(self, url: str, **options: Unpack[RequestOptions]) -> FlextResult[HttpResponse]:
        """OPTIONS ``url``."""
        return self.request("OPTIONS", url, **options)

    def delete(self, url: str, **options: Unpack[RequestOptions]) -> FlextResult[HttpResponse]:
        """DELETE ``url``."""
        return self.request("DELETE", url, **options)

    def post(self, url: str, **options: Unpack[RequestOptions]) -> FlextResult[HttpResponse]:
        """POST to ``url``."""
        return self.request("POST", url, **options)

    def put(self, url: str, **options: Unpack[RequestOptions]) -> FlextResult[HttpResponse]:
        """PUT to ``url``."""
        return self.request("PUT", url, **options)

    def patch(self, url: str, **options: Unpack[RequestOptions]) -> FlextResult[HttpResponse]:
        """PATCH ``url``."""
        return self.request("PATCH", url, **options)

    @contextmanager
    def stream(
        self, method: str, url: str, **options: Unpack[RequestOptions]
    ) -> Iterator[SyncStream]:
        """Blocking :meth:`FlextApiClient.stream`; raises the error of a failed request."""
        ext = dict(options.get("extensions") or {})
        ext["stream"] = True
        options["extensions"] = ext
        response = self.request(method, url, **options).value
        try:
            yield SyncStream(response, self)
        finally:
            self._run(response.aclose())

    def batch(
        self, requests: Iterable[Any], **options: Unpack[BatchOptions]
    ) -> Iterator[BatchResult]:
        """Blocking :meth:`FlextApiClient.batch`: results as they finish."""
        from .batch._processor import batch_sync

        return batch_sync(self, requests, **options)

    def paginate(self, path: str, **options: Unpack[PaginateOptions]) -> SyncPaginator:
        """Blocking :meth:`FlextApiClient.paginate`."""
        from .pagination._paginate import paginate_sync

        return paginate_sync(self, path, **options)

    def stats(self) -> dict[str, Any]:
        """See :meth:`FlextApiClient.stats`."""
        return self._client.stats()

    def close(self) -> None:
        """Close the pool, stop the loop and join its thread; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._run(self._client.aclose())
        finally:
            with self._lock:
                self._stopped = True
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def _serve(self) -> None:
        """The loop's thread: run the loop until :meth:`close` stops it, then finish it
        here. Finishing it in the caller's thread failed where that thread runs a loop
        of its own (a notebook, async code): asyncio runs one loop per thread."""
        try:
            self._loop.run_forever()
        finally:
            self._finish_loop()

    def _finish_loop(self) -> None:
        """Once the loop stopped: cancel what was handed to the loop but never
        finished (its callers get ``INVALID_REQUEST`` "client is closed" instead of
        waiting for ever), finalize open async generators, close the loop."""
        loop = self._loop
        with self._lock:
            pending, self._pending = self._pending, set()
        for future in pending:
            future.cancel()  # wakes its caller; the loop cancels the work below
        try:
            # Runs what was queued before the stop (the start of handed-over work, the
            # cancellations above), then cancels and awaits every task left.
            loop.run_until_complete(asyncio.sleep(0))
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    def __enter__(self) -> FlextApiSyncClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._client).replace("FlextApiClient", "FlextApiSyncClient", 1)


def _closed_error() -> FlextApiError:
    return FlextApiError.from_code(ErrorCode.INVALID_REQUEST, "client is closed")


class SyncStream:
    """A streaming response read with blocking iterators."""

    def __init__(self, response: HttpResponse, owner: FlextApiSyncClient) -> None:
        self.response = response
        self._owner = owner

    @property
    def status_code(self) -> int:
        """The response status."""
        return self.response.status_code

    @property
    def headers(self) -> Any:
        """The response headers."""
        return self.response.headers

    def _drain(self, agen: Any) -> Iterator[Any]:
        while True:
            try:
                yield self._owner._run(agen.__anext__())
            except StopAsyncIteration:
                return

    def iter_bytes(self) -> Iterator[bytes]:
        """Body chunks as they arrive."""
        return self._drain(self.response.aiter_bytes())

    def iter_lines(self) -> Iterator[str]:
        """Decoded text lines as they arrive."""
        return self._drain(self.response.aiter_lines())

    def read(self) -> bytes:
        """The rest of the body."""
        return self._owner._run(self.response.aread())
