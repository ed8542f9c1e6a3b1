"""The batch engine behind :func:`~flext_api.client.run_batch` (see its module for the rules).

:class:`BatchRun` holds one batch's state: the input cursor, ``concurrency`` worker
tasks (a fixed set: never a task per item), the output buffer (a deque, or a reorder
map when ordered), the host pauses and the counters. Flow control is one number,
``outstanding`` (items read from the input and not yet handed to the consumer), kept
under ``buffer``: that bounds memory whatever the input size. Workers and the consumer
wake each other with two events; nothing polls.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from ..._clock import Clock
from ..._errors import CancelledError, ErrorCode, FlextApiError, InvalidRequestError
from ..._models import HttpResponse, host_of
from ..._result import FlextResult
from .._request import is_absolute_url
from ._journal import BatchJournal
from ._models import (
    BatchId,
    BatchProgress,
    BatchRequest,
    BatchResult,
    duplicate_id_error,
    valid_id,
)
from ._pause import HostPauses

if TYPE_CHECKING:
    from .._client import FlextApiClient
    from ._batch import Decoder, ProgressCallback

__all__ = ["BatchRun", "last_response"]

_log = structlog.get_logger("flext_api.client.batch")


def last_response(result: FlextResult[HttpResponse]) -> HttpResponse | None:
    """The last response behind a result: its value, the response its error carries, or
    the one of the last attempt behind ``RETRIES_EXHAUSTED``."""
    error = result.exception
    if error is None:
        return result.value
    if error.response is not None:
        return error.response
    last = error.details.get("last_error")
    return last.response if isinstance(last, FlextApiError) else None


def _attempts_of(result: FlextResult[HttpResponse], response: HttpResponse | None) -> int:
    error = result.exception
    if error is not None:
        attempts = error.details.get("attempts")
        if isinstance(attempts, int):
            return attempts
    if response is not None:
        return response.attempts
    assert error is not None
    # No response: a transport failure was one attempt; a refusal sent nothing.
    return 1 if error.code.is_transport else 0


class _Item:
    """One input item on its way through the batch."""

    __slots__ = ("attempts", "error", "host", "index", "request", "request_id", "seq", "started")

    def __init__(
        self,
        index: int,
        seq: int,
        request: BatchRequest | None,
        request_id: BatchId | None,
        error: FlextApiError | None,
        host: str,
    ) -> None:
        self.index = index
        self.seq = seq
        self.request = request
        self.request_id = request_id
        self.error = error
        self.host = host
        self.attempts = 0
        self.started: float | None = None


class BatchRun:
    """The state of one batch: input cursor, workers, pauses, output buffer, counters."""

    def __init__(
        self,
        client: FlextApiClient,
        source: Iterator[Any] | AsyncIterator[Any],
        *,
        concurrency: int,
        ordered: bool,
        buffer: int,
        progress: ProgressCallback | None,
        progress_interval: float,
        journal: BatchJournal | None,
        max_pause: float,
        decode: Decoder,
        check_duplicates: bool,
        request_options: dict[str, Any],
        clock: Clock,
    ) -> None:
        self._client = client
        self._sync_source = source if isinstance(source, Iterator) else None
        self._async_source = source if isinstance(source, AsyncIterator) else None
        self._input_lock = asyncio.Lock()
        self._concurrency = concurrency
        self._ordered = ordered
        self._buffer = buffer
        self._progress = progress
        self._progress_interval = progress_interval
        self._journal = journal
        self._decode = decode
        self._seen: set[BatchId] | None = set() if check_duplicates else None
        self._options = request_options
        self._clock = clock
        base = client.base_url
        self._base_host = host_of(base) if base else ""
        # input and flow control
        self._exhausted = False
        self._error: BaseException | None = None
        self._position = 0
        self._next_seq = 0
        self._outstanding = 0  # pulled and not yet yielded
        self._blocked = 0  # workers waiting for the consumer to make room
        # output
        self._ready: deque[BatchResult] = deque()
        self._pending: dict[int, BatchResult] = {}
        self._out_seq = 0
        self._wake_consumer = asyncio.Event()
        self._wake_workers = asyncio.Event()
        self._workers_left = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._pauses: HostPauses[_Item] = HostPauses(
            max_pause, clock, spawn=self._spawn, wake=self._wake_workers.set
        )
        # counters
        self._done = 0
        self._failed = 0
        self._retries = 0
        self._skipped = 0
        self._in_flight = 0
        self._started = 0.0
        self._last_report = 0.0

    # -- the consumer's side ---------------------------------------------------------------
    async def results(self) -> AsyncGenerator[BatchResult, None]:
        journal = self._journal
        if journal is not None:
            journal.open()
        self._started = self._last_report = self._clock.monotonic()
        try:
            self._workers_left = self._concurrency
            for _ in range(self._concurrency):
                self._spawn(self._worker())
            while True:
                result = await self._next_result()
                if result is None:
                    break
                yield result
                # The consumer asked for the next one: it has handled this one.
                if journal is not None:
                    journal.record(result)
                # Progress is reported here, once the result is in the consumer's hands:
                # a callback that raises ends the batch without taking a result with it.
                if self._progress is not None:
                    now = self._clock.monotonic()
                    if now - self._last_report >= self._progress_interval:
                        self._report(now)
            self._report()
            if self._error is not None:
                raise self._error
        finally:
            await self._stop()
            if journal is not None:
                journal.close()

    async def _next_result(self) -> BatchResult | None:
        while True:
            if self._ready:
                result = self._ready.popleft()
                self._outstanding -= 1
                if self._blocked:
                    self._wake_workers.set()
                return result
            if self._workers_left == 0:
                return None
            self._wake_consumer.clear()
            await self._wake_consumer.wait()

    def _report(self, now: float | None = None) -> None:
        if self._progress is None:
            return
        now = self._clock.monotonic() if now is None else now
        self._last_report = now
        self._progress(self.snapshot(now))

    def snapshot(self, now: float | None = None) -> BatchProgress:
        """The counters as a :class:`BatchProgress`."""
        now = self._clock.monotonic() if now is None else now
        elapsed = max(0.0, now - self._started)
        return BatchProgress(
            done=self._done,
            failed=self._failed,
            in_flight=self._in_flight,
            retries=self._retries,
            elapsed=elapsed,
            rate=self._done / elapsed if elapsed > 0 else 0.0,
            skipped=self._skipped,
            paused_hosts=self._pauses.paused_hosts,
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- input ----------------------------------------------------------------------------
    async def _pull(self) -> _Item | None:
        """The next item to run, or None once the input is exhausted."""
        while True:
            try:
                if self._async_source is not None:
                    async with self._input_lock:
                        if self._input_done():  # another worker read the end meanwhile
                            return None
                        raw = await anext(self._async_source)
                else:
                    assert self._sync_source is not None
                    raw = next(self._sync_source)
            except (StopIteration, StopAsyncIteration):
                self._exhausted = True
                return None
            except Exception as exc:  # noqa: BLE001 - handed to the consumer, who raises it
                self._fail(exc)
                return None
            item = self._admit(raw)
            if item is not None:
                return item

    def _input_done(self) -> bool:
        return self._exhausted

    def _admit(self, raw: object) -> _Item | None:
        """Turn an input item into an :class:`_Item` (None: skipped, journal says done)."""
        index = self._position
        self._position += 1
        request: BatchRequest | None = None
        error: FlextApiError | None = None
        if isinstance(raw, BatchRequest):
            request = raw
        elif isinstance(raw, FlextApiError):
            error = raw
        elif isinstance(raw, Mapping):
            try:
                request = BatchRequest.from_dict(raw)
            except InvalidRequestError as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - a mapping that raises when read: this item fails
                _log.error("reading a batch item raised", index=index, exc_info=exc)
                error = InvalidRequestError(
                    f"batch item {index} could not be read: {type(exc).__name__}: {exc}"
                )
                error.__cause__ = exc
        else:
            error = InvalidRequestError(
                f"batch item {index} must be a BatchRequest or a mapping, got {type(raw).__name__}"
            )
        if request is not None:
            request_id: BatchId | None = request.id
        else:
            assert error is not None
            candidate = error.details.get("request_id")
            request_id = candidate if valid_id(candidate) else None
        if request_id is not None:
            if self._journal is not None and request_id in self._journal:
                self._skipped += 1
                return None
            if self._seen is not None:
                if request_id in self._seen:
                    request, error = None, duplicate_id_error(request_id)
                else:
                    self._seen.add(request_id)
        host = ""
        if request is not None:
            host = host_of(request.path) if is_absolute_url(request.path) else self._base_host
        seq = self._next_seq
        self._next_seq += 1
        self._outstanding += 1
        return _Item(index, seq, request, request_id, error, host)

    def _fail(self, exc: BaseException) -> None:
        self._error = self._error or exc  # the first error is the one raised
        self._exhausted = True
        self._wake_workers.set()

    # -- workers ----------------------------------------------------------------------------
    async def _worker(self) -> None:
        try:
            while True:
                item = await self._take()
                if item is None:
                    return
                if item.error is not None:
                    self._emit(item, self._prefailed(item, item.error))
                    continue
                if self._pauses.is_paused(item.host):
                    self._pauses.defer(item)
                    continue
                result = await self._execute(item)
                if result is not None:
                    self._emit(item, result)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - a bug: handed to the consumer, who raises it
            self._fail(exc)
        finally:
            self._workers_left -= 1
            self._wake_consumer.set()

    async def _take(self) -> _Item | None:
        """The next item for a worker: a resumed one, a fresh one, or None when all is done."""
        while True:
            if self._pauses.deferred:
                item = self._pauses.resume_one()
                if item is not None:
                    return item
            if not self._exhausted:
                if self._outstanding < self._buffer:
                    item = await self._pull()
                    if item is not None:
                        return item
                    continue
            elif not self._pauses.deferred:
                return None
            # Blocked: the buffer is full, or only paused items are left.
            self._wake_workers.clear()
            self._blocked += 1
            try:
                await self._wake_workers.wait()
            finally:
                self._blocked -= 1

    async def _execute(self, item: _Item) -> BatchResult | None:
        """Send one item; None when it was set aside for a pause of its host."""
        request = item.request
        assert request is not None
        if item.started is None:
            item.started = self._clock.monotonic()
        self._in_flight += 1
        try:
            result = await self._client.request(
                request.method,
                request.path,
                params=request.params,
                json=request.json,
                headers=request.headers,
                **self._options,
            )
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            result = FlextResult.fail(CancelledError(f"request {item.request_id!r} was cancelled"))
        except Exception as exc:  # noqa: BLE001 - one result per item; logged below
            _log.error("batch request raised", request_id=item.request_id, exc_info=exc)
            result = FlextResult.fail(exc)
        finally:
            self._in_flight -= 1
        response = last_response(result)
        attempts = _attempts_of(result, response)
        item.attempts += attempts
        self._retries += max(0, attempts - 1)
        error = result.exception
        if (
            error is not None
            and error.code is ErrorCode.CIRCUIT_OPEN
            and self._pauses.pause(item.host, error.retry_after)
        ):
            self._retries += 1
            self._pauses.defer(item)
            return None
        return self._finish(item, result, response)

    def _finish(
        self, item: _Item, result: FlextResult[HttpResponse], response: HttpResponse | None
    ) -> BatchResult:
        data: Any = None
        if response is not None:
            try:
                data = self._decode(response)
            except Exception as exc:  # noqa: BLE001 - a decoder bug fails this item only
                if result.is_success:
                    result = FlextResult.fail(FlextApiError.wrap(exc, code=ErrorCode.DECODE_ERROR))
                else:
                    _log.warning(
                        "decoding an error response failed",
                        request_id=item.request_id,
                        error=f"{type(exc).__name__}: {exc}",
                    )
        started = item.started if item.started is not None else self._clock.monotonic()
        error = result.exception
        return BatchResult(
            item.request_id,
            error is None,
            response.status_code if response is not None else None,
            data,
            None if error is None else error.message,
            None if error is None else error.code,
            (self._clock.monotonic() - started) * 1000.0,
            item.attempts,
            item.index,
        )

    @staticmethod
    def _prefailed(item: _Item, error: FlextApiError) -> BatchResult:
        return BatchResult(
            item.request_id,
            False,
            error=error.message,
            error_code=error.code,
            index=item.index,
        )

    def _emit(self, item: _Item, result: BatchResult) -> None:
        self._done += 1
        if not result.success:
            self._failed += 1
        if self._ordered:
            self._pending[item.seq] = result
            while self._out_seq in self._pending:
                self._ready.append(self._pending.pop(self._out_seq))
                self._out_seq += 1
        else:
            self._ready.append(result)
        self._wake_consumer.set()
