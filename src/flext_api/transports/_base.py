"""The one seam through which bytes leave the process: the :class:`Transport` protocol.

A transport sends one :class:`HttpRequest` and returns one :class:`HttpResponse`; it
follows no redirects and retries nothing (the client's pipeline does that). It honours
the request's per-phase ``timeout`` and its absolute ``deadline``. Every lower-level
error (aiohttp, httpx2, OS, SSL, asyncio timeouts) is translated to a
:class:`~flext_api.FlextApiError` with the most specific :class:`ErrorCode` in the
transport modules, and only there; :func:`map_os_error` holds the mapping they share.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any, Protocol, runtime_checkable

from .._errors import NOT_SENT, ErrorCode, FlextApiError
from .._models import HttpRequest, HttpResponse

__all__ = [
    "INVALID_MESSAGE",
    "NOT_SENT",
    "deadline_before_sending",
    "INVALID_STATUS",
    "UNPROCESSED",
    "BodyFailed",
    "Transport",
    "body_failed",
    "check_declared",
    "check_framing",
    "check_status",
    "guarded_body",
    "latin1_headers",
    "map_os_error",
    "over_limit",
    "too_large",
    "transport_error",
]

#: ``details["reason"]`` of the ``PROTOCOL_ERROR`` for a status outside 100-599.
INVALID_STATUS = "invalid_status"
#: ``details["reason"]`` of the ``PROTOCOL_ERROR`` for an answer the parser refused (a
#: header with CR or a space in its name, two lengths, a head over the limit): not HTTP,
#: as opposed to a connection closed before or during the answer (no reason).
INVALID_MESSAGE = "invalid_message"
#: ``details["reason"]`` of the ``CONNECT_ERROR`` for a request the upstream said it did
#: not process (HTTP/2 REFUSED_STREAM, or a GOAWAY below the request's stream, RFC 9113
#: §8.7): nothing was done there, so it is safe to send again whatever the method.
UNPROCESSED = "unprocessed"


def deadline_before_sending(request: HttpRequest) -> FlextApiError:
    """The error for ``request``, whose deadline passed before it was sent."""
    err = FlextApiError.from_code(
        ErrorCode.DEADLINE_EXCEEDED, "deadline passed before sending", request=request
    )
    err.details["reason"] = NOT_SENT
    return err


def latin1_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Response headers as every transport hands them over: each octet one character
    (ISO-8859-1, as http.client and the h1 transport read them; lossless, since
    ``value.encode("latin-1")`` gives the octets back). aiohttp reads UTF-8 and turns
    other octets into lone surrogates, which fail any later ``encode()``; httpx guesses
    per response: the transports read their raw headers with this when a value is not
    ASCII (the usual head is, and keeps the library's own reading)."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]


@runtime_checkable
class Transport(Protocol):
    """Sends requests. Implementations: aiohttp (default), httpx2 (HTTP/2), mock, ASGI."""

    async def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse:
        """Send ``request``; with ``stream=True`` the body is left unread.

        Raises :class:`FlextApiError` (never anything else) when the exchange fails.
        A streamed response must be closed with ``await response.aclose()``.
        """
        ...

    async def aclose(self) -> None:
        """Close every connection; the transport cannot be used afterwards."""
        ...

    def stats(self) -> dict[str, Any]:
        """Pool figures: ``max_connections``, ``in_use``, ``waiting`` and ``idle``."""
        ...


_DNS_ERRNOS = {
    socket.EAI_NONAME,
    socket.EAI_AGAIN,
    socket.EAI_FAIL,
    getattr(socket, "EAI_NODATA", socket.EAI_NONAME),
}


def transport_error(
    code: ErrorCode, message: str, request: HttpRequest | None, cause: BaseException | None
) -> FlextApiError:
    """Build a transport error for ``request`` chained to ``cause``."""
    err = FlextApiError.from_code(code, message, request=request)
    if cause is not None:
        err.__cause__ = cause
    return err


def check_status(status: int, request: HttpRequest) -> None:
    """Raise PROTOCOL_ERROR for a status line outside 100-599 (RFC 9110 section 15).

    Parsers accept any three digits; an answer of ``999`` or ``042`` is not HTTP, and
    passing it on would let callers treat it as a success or an unknown class.
    """
    if not 100 <= status <= 599:
        err = transport_error(
            ErrorCode.PROTOCOL_ERROR,
            f"protocol error on {request.method} {request.host}: "
            f"status {status} is outside 100-599",
            request,
            None,
        )
        err.details.update(reason=INVALID_STATUS, status=status)
        raise err


def check_framing(
    request: HttpRequest, content_lengths: list[str], transfer_encoding: bool
) -> None:
    """Raise PROTOCOL_ERROR (``invalid_message``) for an answer framed two ways.

    ``content_lengths`` are the answer's Content-Length field values, one per field;
    ``transfer_encoding`` says whether it has a Transfer-Encoding. Both at once, more
    than one length (even equal ones, or a list), or one that is not digits, is what a
    request smuggler sends (RFC 9112 §6.3: "ought to be handled as an error"). aiohttp's
    and httptools' parsers refuse these; httpx2 and pyreqwest took the chunked body, or
    the repeated length, as valid.
    """
    if not content_lengths:
        return
    value = content_lengths[0].strip()
    if transfer_encoding:
        problem = "both Content-Length and Transfer-Encoding"
    elif len(content_lengths) > 1:
        problem = f"{len(content_lengths)} Content-Length fields"
    elif not (value.isascii() and value.isdigit()):
        problem = f"Content-Length {value[:40]!r} is not a number"
    else:
        return
    err = transport_error(
        ErrorCode.PROTOCOL_ERROR,
        f"protocol error on {request.method} {request.host}: the upstream's answer has {problem}",
        request,
        None,
    )
    err.details["reason"] = INVALID_MESSAGE
    raise err


def too_large(request: HttpRequest, limit: int, declared: int | None = None) -> FlextApiError:
    """``RESPONSE_TOO_LARGE``: the buffered body of ``request``'s answer passed ``limit``.

    ``declared`` is the ``Content-Length`` that announced it, when that is how it was
    known (nothing was read); otherwise the body grew past the limit while being read.
    """
    found = f"announces {declared} bytes" if declared is not None else "grew"
    err = transport_error(
        ErrorCode.RESPONSE_TOO_LARGE,
        f"response too large on {request.method} {request.host}: the body {found} past "
        f"max_response_size={limit} bytes; read it with client.stream(...) or raise "
        "ClientConfig.max_response_size",
        request,
        None,
    )
    err.details["limit"] = limit
    if declared is not None:
        err.details["declared"] = declared
    return err


def over_limit(content_length: str | int | None, limit: int) -> int | None:
    """The ``Content-Length`` (a header value, or parsed) when it announces more than
    ``limit`` bytes, else None.

    A missing, malformed or absurdly long value is None: the body is then counted as it
    is read (and the parser judges the header).
    """
    if type(content_length) is str:
        if not (content_length.isascii() and content_length.isdigit()) or len(content_length) > 18:
            return None
        content_length = int(content_length)
    if type(content_length) is int and content_length > limit:
        return content_length
    return None


def check_declared(
    request: HttpRequest, limit: int | None, content_length: str | int | None
) -> None:
    """RESPONSE_TOO_LARGE when ``content_length`` (the answer's header, or parsed)
    announces more than ``limit`` bytes; nothing when ``limit`` is None (no cap)."""
    if limit is not None:
        declared = over_limit(content_length, limit)
        if declared is not None:
            raise too_large(request, limit, declared)


class BodyFailed(Exception):
    """The request body's own source raised ``source`` (kept here as well as in
    ``__cause__``: httpcore re-raises errors of the body with ``from None``)."""

    def __init__(self, source: BaseException) -> None:
        super().__init__(f"the request body stream failed: {source}")
        self.source = source


async def guarded_body(source: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """``source``, its own errors raised as :class:`BodyFailed` (the body's, not the
    connection's)."""
    iterator = aiter(source)
    while True:
        try:
            chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        except Exception as exc:
            raise BodyFailed(exc) from exc
        yield chunk


def body_failed(request: HttpRequest, source: BaseException) -> FlextApiError:
    """``UNEXPECTED_ERROR`` caused by ``source``, the error the request body's own source
    raised (a gone client, a failed file): the caller's failure, not the connection's."""
    return transport_error(
        ErrorCode.UNEXPECTED_ERROR,
        f"the request body stream failed: {source} on {request.method} {request.host}",
        request,
        source,
    )


def watchdog_error(
    code: ErrorCode, request: HttpRequest, read: float | None, waiting_for: str
) -> FlextApiError:
    """The error of a watchdog expiry: the deadline, or ``read`` seconds without data
    while waiting for ``waiting_for`` (``"the response headers"``...)."""
    if code is ErrorCode.DEADLINE_EXCEEDED:
        message = f"deadline exceeded on {request.method} {request.host}"
    else:
        message = (
            f"read timeout on {request.method} {request.host}: no data for "
            f"{read:.3g}s while waiting for {waiting_for}"
        )
    return transport_error(code, message, request, None)


def map_os_error(exc: BaseException, *, connecting: bool) -> ErrorCode:
    """The most specific code for an OS-level error.

    ``connecting`` says whether the failure happened before the request could be sent
    (then it is a connect error, safe to retry for any method).
    """
    if isinstance(exc, socket.gaierror) or (
        isinstance(exc, OSError)
        and exc.errno in _DNS_ERRNOS
        and exc.strerror is not None
        and "name" in exc.strerror.lower()
    ):
        return ErrorCode.DNS_ERROR
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return ErrorCode.TLS_ERROR
    if isinstance(exc, TimeoutError):
        return ErrorCode.CONNECT_TIMEOUT if connecting else ErrorCode.READ_TIMEOUT
    if isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, OSError)
        and exc.errno in {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH}
    ):
        return ErrorCode.CONNECT_ERROR
    return ErrorCode.CONNECT_ERROR if connecting else ErrorCode.PROTOCOL_ERROR
