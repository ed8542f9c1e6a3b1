"""Batch execution: many requests through one client, bounded concurrency, one result each.

:func:`run_batch` (what ``client.batch(...)`` returns) starts ``concurrency`` worker
tasks -- never a task per item -- that pull items from the input lazily and send each
with ``client.request``, so every item goes through the client's pipeline and shares its
per-host rate limiter, circuit breaker and retry budget. At most ``buffer`` items are
pulled from the input and not yet handed to the consumer (the reorder buffer when
``ordered=True``), so memory is bounded by the concurrency, not by the input size.

Rules (``docs/batch.md`` has the long form):

* **One result per item.** Iterated to the end, a batch yields exactly one
  :class:`BatchResult` per input item. An item may be a :class:`BatchRequest`, a mapping
  (converted with :meth:`BatchRequest.from_dict`) or a :class:`FlextApiError` (a
  pre-failed item, e.g. an input line that could not be parsed); anything else, an
  invalid mapping or a **duplicate id** gives an ``INVALID_REQUEST`` result and nothing
  is sent. Duplicates are detected as they arrive by remembering the ids seen
  (``check_duplicates=False`` saves that memory for inputs known to be unique).
* **Per-item failures stay per item.** An exception escaping ``client.request`` (a bug
  in a plugin the pipeline did not catch) becomes that item's ``UNEXPECTED_ERROR``
  result, and is logged; a ``CancelledError`` raised by the request while the batch
  itself is not being stopped becomes ``CANCELLED``.
* **Stopping early.** When the consumer stops (``break`` then ``aclose()``, or its task
  is cancelled), the in-flight requests are cancelled and awaited: no task is leaked,
  and those items have no result (nobody is listening; a journal does not record them,
  so a resumed run sends them again).
* **Input errors.** An exception raised by the input iterator stops the reading; the
  results of the items already pulled are yielded, then the exception is raised.
* **Open circuits pause a host.** When an item fails with ``CIRCUIT_OPEN``, its host
  is paused: that item and the host's later items are set aside, not sent, until the
  breaker's ``retry_after`` has passed (0.5 s when it gives none: half-open and busy),
  then they run again. Other hosts keep going. The pauses of one host add up to at
  most ``max_pause`` seconds over the batch; a ``CIRCUIT_OPEN`` whose wait does not fit
  in what is left is final (fail fast). ``max_pause=0`` turns pausing off.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict

import orjson

from ..._clock import Clock
from ..._errors import DecodeError, FlextApiError
from ..._exactjson import loads as exact_json
from ..._models import HttpResponse
from .._request import shared_request_options
from ._journal import BatchJournal
from ._models import BatchProgress, BatchRequest, BatchResult
from ._run import BatchRun, last_response

if TYPE_CHECKING:
    import os
    from collections.abc import AsyncGenerator

    from .._client import FlextApiClient

__all__ = [
    "BatchInput",
    "BatchItem",
    "BatchOptions",
    "Decoder",
    "ProgressCallback",
    "decode_body",
    "last_response",
    "run_batch",
]

BatchItem: TypeAlias = "BatchRequest | Mapping[str, Any] | FlextApiError"
BatchInput: TypeAlias = "Iterable[BatchItem] | AsyncIterable[BatchItem]"
Decoder: TypeAlias = Callable[[HttpResponse], Any]
ProgressCallback: TypeAlias = Callable[[BatchProgress], object]

# Options a batch may pass to every ``client.request``; the body and URL come per item.
_REQUEST_OPTIONS = frozenset(
    {"timeout", "retry", "fail_on_http_error", "follow_redirects", "idempotency_key", "extensions"}
)


class BatchOptions(TypedDict, total=False):
    """The keyword arguments of :func:`run_batch`, for ``client.batch(requests, **options)``.

    Kept equal to ``run_batch``'s keyword-only parameters by
    ``tests/unit/client/test_forwarded_options.py``.
    """

    concurrency: int
    ordered: bool
    buffer: int | None
    progress: ProgressCallback | None
    progress_interval: float
    journal: BatchJournal | str | os.PathLike[str] | None
    max_pause: float
    decode: Decoder | None
    check_duplicates: bool
    request_options: Mapping[str, Any] | None
    clock: Clock | None


def decode_body(response: HttpResponse) -> Any:
    """The default ``decode``: JSON when the content type says so, else text; None if empty.

    A body announced as JSON that does not parse is returned as text.
    """
    content = response.content
    if not content:
        return None
    ctype = response.headers.get("content-type", "").lower()
    if "json" in ctype:
        try:
            if "charset" in ctype and "utf-8" not in ctype:
                return response.json()  # a legacy charset: decode the text first
            # JSON is UTF-8 (RFC 8259 §8.1): parse the bytes, the hot path of a batch.
            return exact_json(content)
        except (DecodeError, orjson.JSONDecodeError):
            return response.text
    return response.text


def run_batch(
    client: FlextApiClient,
    requests: BatchInput,
    *,
    concurrency: int = 50,
    ordered: bool = False,
    buffer: int | None = None,
    progress: ProgressCallback | None = None,
    progress_interval: float = 0.5,
    journal: BatchJournal | str | os.PathLike[str] | None = None,
    max_pause: float = 120.0,
    decode: Decoder | None = None,
    check_duplicates: bool = True,
    request_options: Mapping[str, Any] | None = None,
    clock: Clock | None = None,
) -> AsyncGenerator[BatchResult, None]:
    """Send ``requests`` through ``client``; yield a :class:`BatchResult` as each finishes.

    Args:
        client: the client whose ``request`` sends every item.
        requests: an iterable or async iterable of items (see the module docstring),
            consumed lazily.
        concurrency: requests in flight at once (the number of worker tasks).
        ordered: yield in input order instead of completion order; a slow item then
            holds back the ones after it, up to ``buffer``.
        buffer: most items pulled from the input and not yet yielded (default
            ``2 * concurrency``, ``4 * concurrency`` when ordered).
        progress: called with a :class:`BatchProgress` at most every
            ``progress_interval`` seconds, each time after a result has been taken (so
            one that raises ends the batch without losing that result), and once at
            the end.
        journal: a :class:`BatchJournal` or its path: ids it holds are skipped, and
            each result is recorded once the consumer has taken it.
        max_pause: seconds each host may be paused in total on ``CIRCUIT_OPEN``.
        decode: turns a response into ``BatchResult.data`` (default
            :func:`decode_body`); an exception it raises fails the item (``DECODE_ERROR``).
        check_duplicates: give duplicate ids an ``INVALID_REQUEST`` result.
        request_options: keyword arguments passed to every ``client.request``
            (``timeout``, ``retry``, ``fail_on_http_error``, ...); a str
            ``idempotency_key`` is refused (it would be every item's key: use ``True``).
        clock: for durations, progress and pauses (default: the client's clock, so a
            pause waits out the breaker's ``retry_after`` on the breaker's own clock).

    Raises ``TypeError``/``ValueError`` at once for bad arguments. Use
    ``contextlib.aclosing`` (or ``aclose()``) to stop a batch early and promptly.
    """
    # Checked here, not when the batch starts: a float would pass "< 1" and fail later.
    for name, value in (("concurrency", concurrency), ("buffer", buffer)):
        if value is not None and (type(value) is not int or value < 1):
            raise ValueError(f"{name} must be >= 1 (an int), got {value!r}")
    # NaN passes a "< 0" check and then every comparison it meets is False.
    if not (progress_interval >= 0 and math.isfinite(progress_interval)):
        raise ValueError(f"progress_interval must be a number >= 0, got {progress_interval!r}")
    if not (max_pause >= 0 and math.isfinite(max_pause)):
        raise ValueError(f"max_pause must be a number >= 0, got {max_pause!r}")
    options = shared_request_options(
        request_options,
        _REQUEST_OPTIONS,
        each="item",
        hint=" or an Idempotency-Key header per item",
    )
    if journal is not None and not isinstance(journal, BatchJournal):
        journal = BatchJournal(journal)
    run = BatchRun(
        client,
        _input_of(requests),
        concurrency=concurrency,
        ordered=ordered,
        buffer=buffer if buffer is not None else concurrency * (4 if ordered else 2),
        progress=progress,
        progress_interval=progress_interval,
        journal=journal,
        max_pause=max_pause,
        decode=decode or decode_body,
        check_duplicates=check_duplicates,
        request_options=options,
        clock=clock if clock is not None else client.clock,
    )
    return run.results()


def _input_of(requests: object) -> Iterator[Any] | AsyncIterator[Any]:
    if isinstance(requests, str | bytes | Mapping | BatchRequest):
        raise TypeError(
            f"requests must be an iterable of requests, not a single {type(requests).__name__}"
        )
    if isinstance(requests, AsyncIterable):
        return aiter(requests)
    if isinstance(requests, Iterable):
        return iter(requests)
    raise TypeError(f"requests must be an iterable or async iterable, got {type(requests)!r}")
