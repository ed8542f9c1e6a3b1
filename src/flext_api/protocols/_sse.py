"""``FlextApiClient.sse(method, url)``: a resumable Server-Sent Events stream.

Each connection is an ordinary streamed request through the client's pipeline, so auth,
retries of the connect, the host's circuit breaker, metrics and tracing all apply. On
top of that, the stream reconnects when the connection drops or ends (WHATWG: an event
source reconnects unless told to stop): it waits the server's ``retry:`` (or the retry
policy's backoff, whichever is longer), sends ``Last-Event-ID`` with the last ID seen
and goes on yielding events. The read timeout is an *idle* timeout — the longest
silence between two chunks (comments count as traffic) — and there is no total one;
connecting, writing and waiting for the pool use the client's timeouts (its
``timeout=``, or the stream's own ``timeout=`` option).

The parser is ours (:mod:`._sse_parser`) because httpx-sse has no resume and is bound
to httpx; see DESIGN §4.

A stream ends when the server answers 204 (WHATWG: "stop reconnecting"), when the
caller stops iterating or calls :meth:`EventSource.aclose`, or when reconnects are
exhausted. It fails at once, without reconnecting, on bad input, refused credentials,
a 4xx other than 408/429 (WHATWG fails the connection on such a status; 5xx, which
the client's retries already saw, is taken as a restarting server and reconnected) and
an answer that is not an event stream. A failure raises the
:class:`~flext_api.FlextApiError` from the iteration (an iterator has no result to
return, as with ``client.stream``); :attr:`EventSource.error` keeps it too.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from .._config import TimeoutConfig
from .._errors import ErrorCode, FlextApiError
from .._models import Headers, HttpResponse
from .._numbers import is_int, is_real
from .._result import FlextResult
from ..client._client import RequestOptions
from ..resilience import server_delay_hint
from ._reconnect import Reconnect, is_permanent
from ._sse_parser import (
    MAX_EVENT_SIZE,
    MAX_RETRY_MS,
    EventTooLargeError,
    ServerSentEvent,
    SSEParser,
)

if TYPE_CHECKING:
    from ..client._client import FlextApiClient

__all__ = ["EventSource", "SSEOptions"]

_DEFAULT_IDLE_TIMEOUT = 60.0


class SSEOptions(RequestOptions, total=False):
    """The keyword arguments of :class:`EventSource`, for ``client.sse(method, url, **options)``:
    its own keyword-only parameters, and the request keywords (:class:`RequestOptions`)
    its ``**options`` passes to each connection's ``client.build_request``.

    Kept equal to them by ``tests/unit/client/test_forwarded_options.py``.
    """

    idle_timeout: float | None
    max_reconnects: int | None
    max_event_size: int | None
    last_event_id: str


class EventSource:
    """An async iterator of :class:`ServerSentEvent` that reconnects and resumes.

    >>> async with client.sse("GET", "/events") as events:   # doctest: +SKIP
    ...     async for event in events:
    ...         print(event.id, event.event, event.data)

    Args:
        client: the client whose pipeline makes each connection.
        method, url: the request (``GET`` usually; ``POST`` works too).
        idle_timeout: the longest silence between two chunks, in seconds.
        max_reconnects: consecutive failed connections allowed (None: forever);
            a connection that delivered an event resets the count.
        max_event_size: the largest event accepted, in characters of data plus the
            line being read (None: no bound); a larger one fails the stream with
            ``PROTOCOL_ERROR``, without reconnecting (it would come again).
        last_event_id: resume from this ID (sent as ``Last-Event-ID``).
        options: any request keyword (``headers``, ``params``, ``json``...); a
            ``timeout=`` sets the connect, write and pool timeouts (default: the
            client's), never the read one, which is ``idle_timeout``.
    """

    def __init__(
        self,
        client: FlextApiClient,
        method: str,
        url: str,
        *,
        idle_timeout: float | None = _DEFAULT_IDLE_TIMEOUT,
        max_reconnects: int | None = None,
        max_event_size: int | None = MAX_EVENT_SIZE,
        last_event_id: str = "",
        **options: Any,
    ) -> None:
        self._client = client
        self.method = method
        self.url = url
        # Bad settings fail the stream's first iteration (INVALID_REQUEST), as a bad
        # per-request option fails a request's result.
        self._invalid = _check(idle_timeout, max_reconnects, max_event_size)
        if self._invalid is not None:
            idle_timeout, max_reconnects, max_event_size = None, 0, None
        self._idle_timeout = idle_timeout
        # (the client's timeouts, the stream's made of them), made once per distinct base
        self._timeouts: tuple[TimeoutConfig | None, TimeoutConfig] | None = None
        self._options = options
        self._reconnect = Reconnect.from_config(client.config.retry, max_reconnects)
        self._parser = SSEParser(last_event_id, max_event_size=max_event_size)
        self._delivered = last_event_id
        self._given_id = last_event_id  # the caller's; any other ID came from the server
        self._clock = client.clock
        self._closed = False
        self._response: HttpResponse | None = None  # the connection being read
        self._iterator: AsyncGenerator[ServerSentEvent, None] | None = None
        self.connections = 0
        """Connections opened so far (1 + reconnects)."""
        self.error: FlextApiError | None = None
        """Why the stream stopped, when it stopped on an error."""

    @property
    def last_event_id(self) -> str:
        """The ID of the last event handed to the caller (resume from it with
        ``last_event_id=``); reconnects send the parser's, which is the same once every
        received event has been handed over."""
        return self._delivered

    @property
    def retry(self) -> float | None:
        """The server's reconnection time in seconds, or None when it sent none."""
        retry = self._parser.retry
        return None if retry is None else retry / 1000

    @property
    def is_closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._closed

    async def __aenter__(self) -> EventSource:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the stream; the current connection goes back to the pool at once.

        Safe to call from inside the ``async for`` body and from another task while
        one iterates (that iteration then ends)."""
        self._closed = True
        self._reconnect.interrupt()  # a reconnect waiting for its delay stops now
        response, self._response = self._response, None
        if response is not None:
            await response.aclose()
        iterator = self._iterator
        if iterator is not None and not getattr(iterator, "ag_running", True):
            # Suspended at a yield: finish it now rather than whenever it is collected.
            self._iterator = None
            await iterator.aclose()

    def __aiter__(self) -> AsyncGenerator[ServerSentEvent, None]:
        self._iterator = self._events()
        return self._iterator

    async def _events(self) -> AsyncGenerator[ServerSentEvent, None]:
        if self._invalid is not None:
            self.error = self._invalid
            raise self._invalid
        while not self._closed:
            result = await self._connect()
            if result.is_failure:
                err = result.exception
                assert err is not None
                if is_permanent(err):
                    self.error = err
                    raise err
                if not await self._pause(err):
                    return
                continue
            response = result.value
            if not await self._hold(response):
                return
            if response.status_code == 204:
                await response.aclose()
                return
            ctype = response.headers.get("content-type", "")
            if ctype.split(";", 1)[0].strip().lower() != "text/event-stream":
                await response.aclose()
                self.error = FlextApiError.from_code(
                    ErrorCode.PROTOCOL_ERROR,
                    f"expected text/event-stream, got {ctype or 'no content type'!r}",
                    request=response.request,
                    response=response,
                )
                raise self.error
            failure: FlextApiError | None = None
            try:
                feed = self._parser.feed
                async for chunk in response.aiter_bytes():
                    events = feed(chunk)
                    if events:
                        self._reconnect.succeeded()
                        for event in events:
                            self._delivered = event.id
                            yield event
                            if self.is_closed:
                                return
            except FlextApiError as exc:
                failure = exc
            except EventTooLargeError as exc:
                raise self._too_large(exc, response) from exc
            finally:
                self._response = None
                await response.aclose()
            # An event past the bound in the last chunk (after events that chunk also
            # completed) is held back until the next feed, which a stream that ended or
            # was cut never makes: it used to reconnect and replay its events for ever.
            too_large = self._parser.failure
            if too_large is not None:
                raise self._too_large(too_large, response) from too_large
            if not await self._pause(failure):
                return

    def _too_large(self, exc: EventTooLargeError, response: HttpResponse) -> FlextApiError:
        """The stream's ``PROTOCOL_ERROR`` for an event past ``max_event_size``."""
        self.error = FlextApiError.from_code(
            ErrorCode.PROTOCOL_ERROR, str(exc), request=response.request
        )
        return self.error

    async def _hold(self, response: HttpResponse) -> bool:
        """Keep ``response`` for :meth:`aclose`; False (and it released) when the stream
        was closed from another task while it was connecting."""
        if self._closed:
            await response.aclose()
            return False
        self._response = response
        return True

    async def _connect(self) -> FlextResult[Any]:
        client = self._client
        if client.is_closed:
            return FlextResult.fail("client is closed", code=ErrorCode.INVALID_REQUEST)
        headers = Headers(self._options.get("headers"))
        headers.set("Accept", "text/event-stream")
        headers.set("Cache-Control", "no-store")
        last_id = self._parser.last_event_id
        if last_id:
            if not last_id.isascii() and last_id != self._given_id:
                # Any text but NUL is a valid event ID, but a header value must be
                # ASCII here (transports would each send other text their own way), so
                # the server's ID cannot be echoed. Resuming without it would replay or
                # skip events: fail, naming the server's ID, not the caller's headers.
                self.error = FlextApiError.from_code(
                    ErrorCode.PROTOCOL_ERROR,
                    f"cannot resume the event stream: the server's event ID {last_id!r} "
                    "is not ASCII, so it cannot be sent back as Last-Event-ID",
                    details={"last_event_id": last_id},
                )
                raise self.error
            headers.set("Last-Event-ID", last_id)
        options = {**self._options, "headers": headers}
        ext = dict(options.get("extensions") or {})
        ext["stream"] = True
        options["extensions"] = ext
        self.connections += 1
        # A new parser state per connection, keeping the last ID and the retry value.
        self._parser = _continue(self._parser)
        try:
            request = client.build_request(self.method, self.url, **options)
        except FlextApiError as exc:
            return FlextResult(error=exc)
        # A status >= 400 is never an event stream: it fails the connection (retried,
        # reconnected or not by its status) also on a client or stream given
        # ``fail_on_http_error=False``, where it came back as a response that then
        # failed the whole stream as "not text/event-stream".
        request.extensions["fail_on_http_error"] = True
        # Built by the client, the request carries its effective timeouts (its
        # ``timeout=``, or this stream's option): kept for connect, write and pool; the
        # read timeout is the idle timeout, and a stream has no deadline.
        request.timeout = self._stream_timeout(request.timeout)
        request.deadline = None
        return await client.send(request)

    def _stream_timeout(self, base: TimeoutConfig | None) -> TimeoutConfig:
        cached = self._timeouts
        if cached is not None and cached[0] is base:
            return cached[1]
        made = (base or TimeoutConfig.of(None)).model_copy(
            update={"read": self._idle_timeout, "total": None}
        )
        self._timeouts = (base, made)
        return made

    async def _pause(self, failure: FlextApiError | None) -> bool:
        """Wait before the next connection; False (and ``error`` set) when giving up."""
        if self._closed:
            return False
        if self._reconnect.exhausted:
            self.error = failure or FlextApiError.from_code(
                ErrorCode.PROTOCOL_ERROR, "event stream ended and reconnects are exhausted"
            )
            raise self.error
        floor = max(self.retry or 0.0, self._server_delay(failure))
        await self._reconnect.wait(self._clock, floor)  # aclose() interrupts it
        return not self._closed

    def _server_delay(self, failure: FlextApiError | None) -> float:
        """The wait a refusing server asked for (``Retry-After`` of a 429/503, as the
        client's retries read it), capped as ``retry:`` is; 0 when there is none or the
        client's retry config says not to respect it."""
        if failure is None or not self._client.config.retry.respect_retry_after:
            return 0.0
        hint = failure.retry_after
        response = failure.response
        if hint is None and response is not None:
            hint = server_delay_hint(response.status_code, response.headers, self._clock.time())
        if hint is None or not hint > 0:
            return 0.0
        return min(hint, MAX_RETRY_MS / 1000)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<EventSource {self.method} {self.url} {state} "
            f"[connections: {self.connections}, last_event_id: {self.last_event_id!r}]>"
        )


def _check(
    idle_timeout: object, max_reconnects: object, max_event_size: object
) -> FlextApiError | None:
    """The ``INVALID_REQUEST`` error for settings an event stream cannot use, or None."""
    problem = ""
    if idle_timeout is not None and not (is_real(idle_timeout) and idle_timeout > 0):
        problem = f"idle_timeout must be seconds > 0 or None, got {idle_timeout!r}"
    elif max_reconnects is not None and not (is_int(max_reconnects) and max_reconnects >= 0):
        problem = f"max_reconnects must be an int >= 0 or None, got {max_reconnects!r}"
    elif max_event_size is not None and not (is_int(max_event_size) and max_event_size >= 1):
        problem = f"max_event_size must be an int >= 1 or None, got {max_event_size!r}"
    if not problem:
        return None
    return FlextApiError.from_code(ErrorCode.INVALID_REQUEST, problem)


def _continue(parser: SSEParser) -> SSEParser:
    fresh = SSEParser(parser.last_event_id, max_event_size=parser.max_event_size)
    fresh.retry = parser.retry
    return fresh
