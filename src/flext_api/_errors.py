"""The one exception tree of flext-api and its error codes.

Every failure the library reports is a :class:`FlextApiError` carrying an
:class:`ErrorCode`. Lower-level errors (aiohttp, httpx2, OS, SSL) are translated into
this tree at the transport boundary and nowhere else, so code above the transports
only ever sees these types::

    FlextApiError                      (any failure; .code says which)
    ├── TransportError                 the exchange did not complete
    │   ├── ConnectError               CONNECT_ERROR, DNS_ERROR, TLS_ERROR
    │   ├── TimeoutError               CONNECT_TIMEOUT, READ_TIMEOUT, WRITE_TIMEOUT,
    │   │                              POOL_TIMEOUT, DEADLINE_EXCEEDED
    │   └── ProtocolError              PROTOCOL_ERROR
    ├── HttpStatusError                HTTP_STATUS (a response with status >= 400)
    ├── ResilienceError                a policy refused or gave up
    │   ├── CircuitOpenError           CIRCUIT_OPEN
    │   ├── RateLimitedError           RATE_LIMITED
    │   ├── BulkheadFullError          BULKHEAD_FULL
    │   └── RetriesExhaustedError      RETRIES_EXHAUSTED (__cause__ = last attempt's error)
    ├── InvalidRequestError            INVALID_REQUEST (nothing was sent)
    ├── DecodeError                    DECODE_ERROR
    ├── PluginError                    PLUGIN_ERROR
    ├── AuthError                      AUTH_ERROR
    ├── ConfigError                    CONFIG_ERROR
    ├── CancelledError                 CANCELLED
    └── StorageError                   STORAGE_ERROR (an object store refused or failed)
        ├── NotFoundError              NOT_FOUND
        └── PreconditionFailedError    PRECONDITION_FAILED (a conditional write lost)

``FlextApiError.from_code(code, ...)`` builds the most specific class for a code, so
``except flext_api.TimeoutError`` and ``result.error_code is ErrorCode.READ_TIMEOUT``
both work.
"""

from __future__ import annotations

import builtins
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import HttpRequest, HttpResponse

__all__ = [
    "NOT_SENT",
    "AuthError",
    "BulkheadFullError",
    "CancelledError",
    "CircuitOpenError",
    "ConfigError",
    "ConnectError",
    "DecodeError",
    "ErrorCode",
    "FlextApiError",
    "HttpStatusError",
    "InvalidRequestError",
    "NotFoundError",
    "PluginError",
    "PreconditionFailedError",
    "ProtocolError",
    "RateLimitedError",
    "ResilienceError",
    "RetriesExhaustedError",
    "StorageError",
    "TimeoutError",
    "TransportError",
]


class ErrorCode(StrEnum):
    """Machine-readable reason of a failure; stable across releases."""

    CONNECT_ERROR = "CONNECT_ERROR"
    CONNECT_TIMEOUT = "CONNECT_TIMEOUT"
    READ_TIMEOUT = "READ_TIMEOUT"
    WRITE_TIMEOUT = "WRITE_TIMEOUT"
    POOL_TIMEOUT = "POOL_TIMEOUT"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    DNS_ERROR = "DNS_ERROR"
    TLS_ERROR = "TLS_ERROR"
    PROTOCOL_ERROR = "PROTOCOL_ERROR"
    HTTP_STATUS = "HTTP_STATUS"
    TOO_MANY_REDIRECTS = "TOO_MANY_REDIRECTS"
    CIRCUIT_OPEN = "CIRCUIT_OPEN"
    RATE_LIMITED = "RATE_LIMITED"
    BULKHEAD_FULL = "BULKHEAD_FULL"
    RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"
    INVALID_REQUEST = "INVALID_REQUEST"
    DECODE_ERROR = "DECODE_ERROR"
    PLUGIN_ERROR = "PLUGIN_ERROR"
    AUTH_ERROR = "AUTH_ERROR"
    CANCELLED = "CANCELLED"
    CONFIG_ERROR = "CONFIG_ERROR"
    UNEXPECTED_ERROR = "UNEXPECTED_ERROR"
    GRAPHQL_ERROR = "GRAPHQL_ERROR"
    WEBSOCKET_CLOSED = "WEBSOCKET_CLOSED"
    # A buffered response body past the client's max_response_size (not retried: the
    # next attempt would be as large).
    RESPONSE_TOO_LARGE = "RESPONSE_TOO_LARGE"
    # Storage (flext_api.storage): the object, or the condition, says no.
    NOT_FOUND = "NOT_FOUND"
    PRECONDITION_FAILED = "PRECONDITION_FAILED"
    STORAGE_ERROR = "STORAGE_ERROR"

    @property
    def is_timeout(self) -> bool:
        """True for the codes that mean "ran out of time"."""
        return self in _TIMEOUT_CODES

    @property
    def is_transport(self) -> bool:
        """True when the exchange with the server did not complete."""
        return self in _TRANSPORT_CODES


_TIMEOUT_CODES = frozenset(
    {
        ErrorCode.CONNECT_TIMEOUT,
        ErrorCode.READ_TIMEOUT,
        ErrorCode.WRITE_TIMEOUT,
        ErrorCode.POOL_TIMEOUT,
        ErrorCode.DEADLINE_EXCEEDED,
    }
)
_TRANSPORT_CODES = _TIMEOUT_CODES | {
    ErrorCode.CONNECT_ERROR,
    ErrorCode.DNS_ERROR,
    ErrorCode.TLS_ERROR,
    ErrorCode.PROTOCOL_ERROR,
}


#: ``details["reason"]`` of a ``DEADLINE_EXCEEDED`` raised before anything was sent (the
#: request's deadline had passed): no outcome of the server's, so breakers and passive
#: health are not told of it.
NOT_SENT = "not_sent"


class FlextApiError(Exception):
    """Base of every flext-api error.

    Attributes:
        code: the :class:`ErrorCode`.
        message: a one-line, human-readable reason (never contains secrets).
        request: the request being made, when there was one.
        response: the response, when one arrived (e.g. ``HTTP_STATUS``).
        retry_after: seconds the server or a policy asked to wait, or None.
        details: extra structured facts (attempt count, host, limits...).
    """

    default_code = ErrorCode.UNEXPECTED_ERROR

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        request: HttpRequest | None = None,
        response: HttpResponse | None = None,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code: ErrorCode = code if code is not None else self.default_code
        self.request = request
        self.response = response
        self.retry_after = retry_after
        self.details: dict[str, Any] = details if details is not None else {}

    def __str__(self) -> str:
        return f"[{self.code.value}] {self.message}"

    def __repr__(self) -> str:
        extra = f", retry_after={self.retry_after!r}" if self.retry_after is not None else ""
        return f"{type(self).__name__}(code={self.code.value}, message={self.message!r}{extra})"

    @classmethod
    def from_code(
        cls,
        code: ErrorCode,
        message: str,
        *,
        request: HttpRequest | None = None,
        response: HttpResponse | None = None,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> FlextApiError:
        """Build the most specific error class for ``code``."""
        klass = _CLASS_FOR_CODE.get(code, FlextApiError)
        return klass(
            message,
            code=code,
            request=request,
            response=response,
            retry_after=retry_after,
            details=details,
        )

    @classmethod
    def wrap(cls, exc: BaseException, *, code: ErrorCode | None = None) -> FlextApiError:
        """Return ``exc`` if it is already a FlextApiError, else a new one chained to it."""
        if isinstance(exc, FlextApiError):
            return exc
        if isinstance(exc, builtins.TimeoutError) and code is None:
            code = ErrorCode.READ_TIMEOUT
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        err = cls.from_code(code or ErrorCode.UNEXPECTED_ERROR, message)
        err.__cause__ = exc
        return err


class TransportError(FlextApiError):
    """The exchange with the server did not complete."""

    default_code = ErrorCode.CONNECT_ERROR


class ConnectError(TransportError):
    """No connection could be made (refused, unknown host, TLS failure)."""


class TimeoutError(TransportError):
    """A connect, read, write, pool or overall deadline ran out."""

    default_code = ErrorCode.READ_TIMEOUT


class ProtocolError(TransportError):
    """The peer broke HTTP (dropped connection, body shorter than Content-Length...)."""

    default_code = ErrorCode.PROTOCOL_ERROR


class HttpStatusError(FlextApiError):
    """A complete response arrived with a status >= 400; ``response`` holds it."""

    default_code = ErrorCode.HTTP_STATUS


class ResilienceError(FlextApiError):
    """A resilience policy refused the call or gave up."""


class CircuitOpenError(ResilienceError):
    """The host's circuit breaker is open; ``retry_after`` = seconds until half-open."""

    default_code = ErrorCode.CIRCUIT_OPEN


class RateLimitedError(ResilienceError):
    """A limiter (ours or the server's) refused within the time allowed."""

    default_code = ErrorCode.RATE_LIMITED


class BulkheadFullError(ResilienceError):
    """The host's concurrency cap and its queue are both full."""

    default_code = ErrorCode.BULKHEAD_FULL


class RetriesExhaustedError(ResilienceError):
    """Every attempt failed; ``__cause__`` and ``details["last_error"]`` hold the last one."""

    default_code = ErrorCode.RETRIES_EXHAUSTED


class InvalidRequestError(FlextApiError):
    """The request was refused before anything was sent (bad URL, header, body)."""

    default_code = ErrorCode.INVALID_REQUEST


class DecodeError(FlextApiError):
    """A body could not be decoded (invalid JSON, bad charset, bad compression)."""

    default_code = ErrorCode.DECODE_ERROR


class PluginError(FlextApiError):
    """A plugin raised; ``details["plugin"]`` names it and ``__cause__`` is the exception."""

    default_code = ErrorCode.PLUGIN_ERROR


class AuthError(FlextApiError):
    """Credentials could not be obtained (e.g. the token endpoint refused)."""

    default_code = ErrorCode.AUTH_ERROR


class ConfigError(FlextApiError):
    """Configuration is invalid; the message names the field and the value."""

    default_code = ErrorCode.CONFIG_ERROR


class CancelledError(FlextApiError):
    """The call was cancelled before it finished."""

    default_code = ErrorCode.CANCELLED


class StorageError(FlextApiError):
    """An object store refused or failed an operation; ``details`` names the path."""

    default_code = ErrorCode.STORAGE_ERROR


class NotFoundError(StorageError):
    """The object (or container/bucket) does not exist."""

    default_code = ErrorCode.NOT_FOUND


class PreconditionFailedError(StorageError):
    """A conditional write or read lost: the object exists, or its ETag changed."""

    default_code = ErrorCode.PRECONDITION_FAILED


_CLASS_FOR_CODE: dict[ErrorCode, type[FlextApiError]] = {
    ErrorCode.CONNECT_ERROR: ConnectError,
    ErrorCode.DNS_ERROR: ConnectError,
    ErrorCode.TLS_ERROR: ConnectError,
    ErrorCode.CONNECT_TIMEOUT: TimeoutError,
    ErrorCode.READ_TIMEOUT: TimeoutError,
    ErrorCode.WRITE_TIMEOUT: TimeoutError,
    ErrorCode.POOL_TIMEOUT: TimeoutError,
    ErrorCode.DEADLINE_EXCEEDED: TimeoutError,
    ErrorCode.PROTOCOL_ERROR: ProtocolError,
    ErrorCode.HTTP_STATUS: HttpStatusError,
    ErrorCode.TOO_MANY_REDIRECTS: HttpStatusError,
    ErrorCode.CIRCUIT_OPEN: CircuitOpenError,
    ErrorCode.RATE_LIMITED: RateLimitedError,
    ErrorCode.BULKHEAD_FULL: BulkheadFullError,
    ErrorCode.RETRIES_EXHAUSTED: RetriesExhaustedError,
    ErrorCode.INVALID_REQUEST: InvalidRequestError,
    ErrorCode.DECODE_ERROR: DecodeError,
    ErrorCode.PLUGIN_ERROR: PluginError,
    ErrorCode.AUTH_ERROR: AuthError,
    ErrorCode.CONFIG_ERROR: ConfigError,
    ErrorCode.CANCELLED: CancelledError,
    ErrorCode.NOT_FOUND: NotFoundError,
    ErrorCode.PRECONDITION_FAILED: PreconditionFailedError,
    ErrorCode.STORAGE_ERROR: StorageError,
}
