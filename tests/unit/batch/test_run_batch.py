"""run_batch: one result per item, bounded concurrency and memory, per-item failures."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from flext_api import ErrorCode, FlextApiError, FlextResult, HttpRequest, HttpResponse
from flext_api._clock import system_clock
from flext_api._errors import DecodeError, InvalidRequestError
from flext_api.client._plugin import CallNext
from flext_api.client.batch._batch import decode_body, last_response, run_batch
from flext_api.client.batch._models import BatchRequest
from flext_api.client.plugins import RetryPlugin
from flext_api.testing import set_testing
from flext_api.transports import MockTransport

from ._helpers import collect, json_response, make_client, ok_handler, other_tasks


def _requests(n: int, path: str = "/item") -> Iterator[BatchRequest]:
    return (BatchRequest(i, f"{path}/{i}") for i in range(n))


async def test_one_result_per_item() -> None:
    """Every input id comes back exactly once."""
    async with make_client() as client:
        results = await collect(client.batch(_requests(1000), concurrency=10))
    assert sorted(r.request_id for r in results) == list(range(1000))  # type: ignore[type-var]
    assert all(r.success and r.status_code == 200 and r.attempts == 1 for r in results)
    assert sorted(r.index for r in results) == list(range(1000))  # type: ignore[type-var]


async def test_in_flight_never_exceeds_concurrency() -> None:
    """At most `concurrency` requests are in flight, and that many are reached."""
    current = peak = 0

    async def handler(request: HttpRequest) -> HttpResponse:
        nonlocal current, peak
        current += 1
        peak = max(peak, current)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        current -= 1
        return json_response()

    async with make_client(handler) as client:
        await collect(client.batch(_requests(200), concurrency=7))
    assert peak == 7


async def test_tasks_are_bounded_by_concurrency_not_input_size() -> None:
    """The batch runs a fixed set of worker tasks, not a task per item."""
    seen_tasks = 0

    async def handler(request: HttpRequest) -> HttpResponse:
        nonlocal seen_tasks
        seen_tasks = max(seen_tasks, len(asyncio.all_tasks()))
        await asyncio.sleep(0)
        return json_response()

    async with make_client(handler) as client:
        await collect(client.batch(_requests(2000), concurrency=5))
    assert seen_tasks <= 5 + 1  # the workers and the test's own task


async def test_input_is_consumed_lazily() -> None:
    """An endless input is read only `buffer` items ahead of the consumer."""
    pulled = 0

    def endless() -> Iterator[BatchRequest]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield BatchRequest(i, "/x")

    async with make_client() as client:
        batch = run_batch(client, endless(), concurrency=4, buffer=10)
        taken = [await anext(batch) for _ in range(5)]
        await asyncio.sleep(0.01)
        assert pulled <= 5 + 10
        await batch.aclose()
    assert len(taken) == 5


async def test_ordered_yields_in_input_order() -> None:
    """ordered=True hands results out in input order, whatever the completion order."""
    release = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/0"):
            await release.wait()
        elif request.url.endswith("/9"):
            release.set()
        return json_response()

    async with make_client(handler) as client:
        ordered = await collect(client.batch(_requests(10), concurrency=10, ordered=True))
        release.clear()
        unordered = await collect(client.batch(_requests(10), concurrency=10))
    assert [r.request_id for r in ordered] == list(range(10))
    assert unordered[-1].request_id == 0


async def test_ordered_reorder_buffer_is_bounded() -> None:
    """A stuck first item holds back at most `buffer` items pulled from the input."""
    release = asyncio.Event()
    pulled = 0

    def counted() -> Iterator[BatchRequest]:
        nonlocal pulled
        for request in _requests(100):
            pulled += 1
            yield request

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/0"):
            await release.wait()
        return json_response()

    async with make_client(handler) as client:
        batch = run_batch(client, counted(), concurrency=3, ordered=True, buffer=8)
        first = asyncio.ensure_future(anext(batch))
        for _ in range(20):
            await asyncio.sleep(0)
        assert pulled == 8
        assert not first.done()
        release.set()
        assert (await first).request_id == 0
        rest = await collect(batch)
    assert [r.request_id for r in rest] == list(range(1, 100))


async def test_async_iterable_input() -> None:
    """An async iterable input is consumed like an iterable one."""

    async def source() -> AsyncIterator[BatchRequest]:
        for request in _requests(50):
            await asyncio.sleep(0)
            yield request

    async with make_client() as client:
        results = await collect(client.batch(source(), concurrency=8))
    assert sorted(r.request_id for r in results) == list(range(50))  # type: ignore[type-var]


async def test_duplicate_id_gets_invalid_request_and_is_not_sent() -> None:
    """A repeated id gets an INVALID_REQUEST result; only the first is sent."""
    client = make_client()
    async with client:
        items = [BatchRequest("a", "/1"), BatchRequest("b", "/2"), BatchRequest("a", "/3")]
        results = await collect(client.batch(items, ordered=True))
    assert [r.success for r in results] == [True, True, False]
    assert results[2].request_id == "a"
    assert results[2].error_code is ErrorCode.INVALID_REQUEST
    assert "duplicate request id 'a'" in (results[2].error or "")
    transport = client.transport
    assert isinstance(transport, MockTransport)
    assert len(transport.requests) == 2


async def test_duplicates_allowed_when_checking_is_off() -> None:
    """check_duplicates=False sends repeated ids like any other."""
    async with make_client() as client:
        items = [BatchRequest("a", "/1"), BatchRequest("a", "/2")]
        results = await collect(client.batch(items, check_duplicates=False))
    assert [r.success for r in results] == [True, True]


async def test_mappings_are_converted_and_invalid_ones_fail() -> None:
    """A dict becomes a request; an invalid dict gets INVALID_REQUEST with its id."""
    async with make_client() as client:
        items: list[Any] = [{"id": "ok", "path": "/x"}, {"id": "bad", "path": "/x", "nope": 1}]
        results = await collect(client.batch(items, ordered=True))
    assert results[0].success
    assert (results[1].request_id, results[1].error_code) == ("bad", ErrorCode.INVALID_REQUEST)


async def test_item_of_another_type_fails_with_its_type() -> None:
    """An item that is neither a request nor a mapping gets INVALID_REQUEST naming its type."""
    async with make_client() as client:
        results = await collect(client.batch([42]))  # type: ignore[list-item]
    assert results[0].request_id is None
    assert results[0].error == "batch item 0 must be a BatchRequest or a mapping, got int"


async def test_error_items_pass_through_as_failures() -> None:
    """A FlextApiError in the input becomes a failed result with its code and id."""
    error = InvalidRequestError("line 3: bad", details={"request_id": "z"})
    async with make_client() as client:
        results = await collect(client.batch([error]))
    assert (results[0].request_id, results[0].error, results[0].attempts) == ("z", "line 3: bad", 0)


async def test_plugin_exception_is_that_items_plugin_error() -> None:
    """A plugin raising fails only the item it raised for (PLUGIN_ERROR)."""

    async def flaky(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        if request.url.endswith("/3"):
            raise RuntimeError("plugin bug")
        return await call_next(request)

    async with make_client(ok_handler, flaky) as client:
        results = await collect(client.batch(_requests(6), ordered=True))
    assert [r.error_code for r in results] == [None] * 3 + [ErrorCode.PLUGIN_ERROR] + [None] * 2


class _RaisingClient:
    """A stand-in client whose request raises what it is told to."""

    base_url = "http://svc"
    clock = system_clock

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def request(self, method: str, url: str, **options: Any) -> FlextResult[HttpResponse]:
        raise self.exc


async def test_exception_escaping_request_is_unexpected_error() -> None:
    """An exception escaping client.request becomes an UNEXPECTED_ERROR result."""
    client: Any = _RaisingClient(RuntimeError("kaboom"))
    results = await collect(run_batch(client, [BatchRequest("a", "/x")]))
    assert results[0].error_code is ErrorCode.UNEXPECTED_ERROR
    assert results[0].error == "RuntimeError: kaboom"


async def test_cancelled_request_is_a_cancelled_result() -> None:
    """A CancelledError raised by the request (not by stopping the batch) is CANCELLED."""
    client: Any = _RaisingClient(asyncio.CancelledError())
    results = await collect(run_batch(client, [BatchRequest("a", "/x")]))
    assert results[0].error_code is ErrorCode.CANCELLED


async def test_aclose_cancels_in_flight_requests_and_leaves_no_task() -> None:
    """Stopping early cancels the requests in flight; no task is left behind."""
    started = 0
    cancelled = 0

    async def handler(request: HttpRequest) -> HttpResponse:
        nonlocal started, cancelled
        started += 1
        if request.url.endswith("/0"):
            return json_response()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled += 1
            raise
        raise AssertionError("unreachable")

    async with make_client(handler) as client:
        batch = run_batch(client, _requests(100), concurrency=5)
        first = await anext(batch)
        await batch.aclose()
        assert other_tasks() == []
    assert first.request_id == 0
    assert cancelled == started - 1 >= 4


async def test_consumer_cancellation_stops_the_batch() -> None:
    """Cancelling the consuming task cancels the batch's workers too."""
    workers: set[asyncio.Task[Any]] = set()
    all_in_flight = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        task = asyncio.current_task()
        assert task is not None
        workers.add(task)
        if len(workers) == 3:
            all_in_flight.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with make_client(handler) as client:
        consumer = asyncio.ensure_future(collect(client.batch(_requests(10), concurrency=3)))
        await asyncio.wait_for(all_in_flight.wait(), 30)
        # Every worker is inside a request, and only they and the consumer are alive.
        assert set(other_tasks()) == workers | {consumer}
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert all(worker.cancelled() for worker in workers)
        assert other_tasks() == []


async def test_input_error_is_raised_after_the_pulled_items() -> None:
    """An input iterator that raises: results already pulled come out, then the error."""

    def broken() -> Iterator[BatchRequest]:
        yield BatchRequest("a", "/1")
        yield BatchRequest("b", "/2")
        raise OSError("disk gone")

    seen: list[Any] = []

    async def consume(client: Any) -> None:
        async for result in client.batch(broken()):
            seen.append(result.request_id)

    async with make_client() as client:
        with pytest.raises(OSError, match="disk gone"):
            await consume(client)
    assert sorted(seen) == ["a", "b"]


async def test_async_input_error_is_raised() -> None:
    """An async input that raises ends the batch with that error."""

    async def broken() -> AsyncIterator[BatchRequest]:
        yield BatchRequest("a", "/1")
        raise ValueError("bad source")

    async with make_client() as client:
        with pytest.raises(ValueError, match="bad source"):
            await collect(client.batch(broken()))


def test_decode_body_by_content_type() -> None:
    """JSON is parsed, text returned as str, an empty body is None, bad JSON is text."""
    assert decode_body(json_response(body=b'{"a": 1}')) == {"a": 1}
    text = HttpResponse(200, content=b"hi", headers={"Content-Type": "text/plain"})
    assert decode_body(text) == "hi"
    assert decode_body(HttpResponse(204)) is None
    assert decode_body(json_response(body=b"{oops")) == "{oops"
    # An integer past 64 bits stays an int (orjson made it a float).
    big = 123456789012345678901234567890
    assert decode_body(json_response(body=b'{"a": %d}' % big)) == {"a": big}


async def test_http_error_result_carries_status_and_body() -> None:
    """A 404 fails with HTTP_STATUS, its status code and its decoded body."""
    async with make_client(lambda r: json_response(404, b'{"detail": "no"}')) as client:
        [result] = await collect(client.batch([BatchRequest("a", "/x")]))
    assert (result.success, result.status_code, result.error_code) == (
        False,
        404,
        ErrorCode.HTTP_STATUS,
    )
    assert result.data == {"detail": "no"}
    assert result.attempts == 1


async def test_retries_exhausted_reports_last_status_and_attempts() -> None:
    """After retries, the result has the last response's status and every attempt."""
    with set_testing(True):
        async with make_client(lambda r: json_response(503), RetryPlugin()) as client:
            [result] = await collect(client.batch([BatchRequest("a", "/x")]))
    assert (result.error_code, result.status_code, result.attempts) == (
        ErrorCode.RETRIES_EXHAUSTED,
        503,
        4,
    )


async def test_transport_failure_counts_one_attempt() -> None:
    """A connection failure without retries is one attempt and has no status."""

    def refuse(request: HttpRequest) -> HttpResponse:
        raise ConnectionRefusedError("refused")

    async with make_client(refuse) as client:
        [result] = await collect(client.batch([BatchRequest("a", "/x")]))
    assert (result.error_code, result.status_code, result.attempts) == (
        ErrorCode.CONNECT_ERROR,
        None,
        1,
    )


async def test_custom_decode_error_fails_a_success() -> None:
    """A decode function that raises on a success fails the item with DECODE_ERROR."""

    def decode(response: HttpResponse) -> Any:
        raise KeyError("field")

    async with make_client() as client:
        [result] = await collect(client.batch([BatchRequest("a", "/x")], decode=decode))
    assert (result.success, result.status_code, result.error_code) == (
        False,
        200,
        ErrorCode.DECODE_ERROR,
    )


async def test_custom_decode_error_on_a_failure_keeps_the_failure() -> None:
    """A decode function that raises on an error response leaves that failure as it was."""

    def decode(response: HttpResponse) -> Any:
        raise DecodeError("not json")

    async with make_client(lambda r: json_response(500)) as client:
        [result] = await collect(client.batch([BatchRequest("a", "/x")], decode=decode))
    assert (result.error_code, result.data) == (ErrorCode.HTTP_STATUS, None)


async def test_request_options_reach_every_request() -> None:
    """request_options are passed to client.request (here: statuses are not failures)."""
    async with make_client(lambda r: json_response(500)) as client:
        results = await collect(
            client.batch(_requests(3), request_options={"fail_on_http_error": False})
        )
    assert all(r.success and r.status_code == 500 for r in results)


def test_last_response_reaches_through_retries_exhausted() -> None:
    """last_response finds the value, the error's response, or the last attempt's."""
    response = json_response(502)
    status_error = response.error_for_status()
    assert status_error is not None
    exhausted = FlextApiError.from_code(
        ErrorCode.RETRIES_EXHAUSTED, "gave up", details={"last_error": status_error}
    )
    assert last_response(FlextResult.ok(response)) is response
    assert last_response(FlextResult(error=status_error)) is response
    assert last_response(FlextResult(error=exhausted)) is response
    assert last_response(FlextResult.fail("x", code=ErrorCode.CONNECT_ERROR)) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 0}, "concurrency must be >= 1"),
        ({"buffer": 0}, "buffer must be >= 1"),
        ({"progress_interval": -1}, "progress_interval must be a number >= 0"),
        ({"max_pause": -1}, "max_pause must be a number >= 0"),
        # NaN compares False with everything: it passed the "< 0" check.
        ({"max_pause": float("nan")}, "max_pause must be a number >= 0"),
        ({"max_pause": float("inf")}, "max_pause must be a number >= 0"),
        ({"progress_interval": float("nan")}, "progress_interval must be a number >= 0"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict[str, Any], message: str) -> None:
    """Bad numbers are refused when the batch is created."""
    client = make_client()
    with pytest.raises(ValueError, match=message):
        run_batch(client, [], **kwargs)


def test_unknown_request_option_is_type_error() -> None:
    """request_options accepts only per-request settings, not bodies or URLs."""
    with pytest.raises(TypeError, match="does not take json"):
        run_batch(make_client(), [], request_options={"json": {}})


@pytest.mark.parametrize("bad", ["abc", b"abc", {"id": 1, "path": "/x"}, 42])
def test_single_item_or_non_iterable_input_is_type_error(bad: Any) -> None:
    """A string, a mapping, a request or a non-iterable is not a list of requests."""
    with pytest.raises(TypeError, match="requests must be"):
        run_batch(make_client(), bad)
    with pytest.raises(TypeError, match="requests must be"):
        run_batch(make_client(), BatchRequest("a", "/x"))  # type: ignore[arg-type]


async def test_empty_input_yields_nothing() -> None:
    """An empty input ends at once with no result."""
    async with make_client() as client:
        assert await collect(client.batch([])) == []


class _Bug(BaseException):
    """Stands for a bug escaping every handler (not an Exception)."""


async def test_worker_bug_is_raised_to_the_consumer() -> None:
    """An error escaping a worker ends the batch with that error, leaving no task."""

    def decode(response: HttpResponse) -> Any:
        raise _Bug("worker bug")

    async with make_client() as client:
        with pytest.raises(_Bug, match="worker bug"):
            await collect(client.batch(_requests(5), concurrency=2, decode=decode))
        assert other_tasks() == []


def test_decode_body_honours_a_legacy_json_charset() -> None:
    """JSON announced in another charset than UTF-8 is decoded through that charset."""
    response = HttpResponse(
        200,
        content='{"name": "Zoë"}'.encode("latin-1"),
        headers={"Content-Type": "application/json; charset=iso-8859-1"},
    )
    assert decode_body(response) == {"name": "Zoë"}
