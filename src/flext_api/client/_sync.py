"""``FlextApiSyncClient``: the async client's surface, blocking, for scripts and notebooks.

One private event loop runs in one daemon thread per client; every call is handed to it
with ``run_coroutine_threadsafe``. That makes the client safe to share between threads
(calls run concurrently on the loop, exactly as async callers would) and usable inside
a notebook whose own loop is already running. ``close()`` closes the pool, stops the
loop and joins the thread, so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from .._errors import ErrorCode
from .._models import HttpResponse
from .._result import FlextResult
from ._client import FlextApiClient, RequestOptions

if TYPE_CHECKING:
    from .batch._models import BatchResult
    from .pagination._paginate import SyncPaginator

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
            target=self._loop.run_forever, name="flext-api-sync-client", daemon=True
        )
        self._thread.start()
        self._lock = threading.Lock()
        self._closed = False
        self._run(self._client.open())

    @property
    def async_client(self) -> FlextApiClient:
        """The async client doing the work (use it only from its own loop)."""
        return self._client

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("FlextApiSyncClient cannot be called from its own event loop")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            # KeyboardInterrupt in the caller: stop the work on the loop too.
            future.cancel()
            raise

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

    def batch(self, requests: Iterable[Any], **options: Any) -> Iterator[BatchResult]:
        """Blocking :meth:`FlextApiClient.batch`: results as they finish."""
        from .batch._processor import batch_sync

        return batch_sync(self, requests, **options)

    def paginate(self, path: str, **options: Any) -> SyncPaginator:
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
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

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
