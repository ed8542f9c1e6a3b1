"""Typed reasons for the responses the gateway makes itself (Envoy's response flags).

Every failure the gateway produces is a problem+json response whose status follows from
its reason; the reason travels in the ``X-Gateway-Reason`` response header and in the
access log, so a 503 from the gateway is never confused with a 503 from a service.
"""

from __future__ import annotations

from enum import StrEnum

from .._errors import ErrorCode

__all__ = ["REASON_HEADER", "Reason", "reason_for_code"]

REASON_HEADER = b"x-gateway-reason"


class Reason(StrEnum):
    """Why the gateway answered (or cut) a request itself."""

    NO_ROUTE = "no_route"
    AMBIGUOUS_REQUEST = "ambiguous_request"
    UNSUPPORTED_CODING = "unsupported_transfer_coding"
    AMBIGUOUS_PATH = "ambiguous_path"
    BAD_HOST = "bad_host"
    HEADERS_TOO_LARGE = "headers_too_large"
    BODY_TOO_LARGE = "body_too_large"
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    AUTH_UNAVAILABLE = "auth_unavailable"
    RATE_LIMIT_UNAVAILABLE = "rate_limit_unavailable"
    CONCURRENCY_LIMITED = "concurrency_limited"
    CONNECT_FAILURE = "connect_failure"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    UPSTREAM_RESET = "upstream_reset"
    INVALID_RESPONSE = "invalid_response"
    BREAKER_OPEN = "breaker_open"
    NO_HEALTHY_INSTANCE = "no_healthy_instance"
    OVERFLOW = "overflow"
    DRAINING = "draining"
    UPSTREAM_CUT = "upstream_cut"
    UNFILTERABLE_RESPONSE = "unfilterable_response"
    CLIENT_DISCONNECT = "client_disconnect"
    WEBSOCKET_DISABLED = "websocket_disabled"
    METHOD_NOT_ALLOWED = "method_not_allowed"

    @property
    def status(self) -> int:
        """The status of the problem response for this reason."""
        return _STATUS[self]

    @property
    def summary(self) -> str:
        """A one-line, public description."""
        return _TITLE[self]


_STATUS = {
    Reason.NO_ROUTE: 404,
    Reason.AMBIGUOUS_REQUEST: 400,
    Reason.UNSUPPORTED_CODING: 501,
    Reason.AMBIGUOUS_PATH: 400,
    Reason.BAD_HOST: 400,
    Reason.HEADERS_TOO_LARGE: 431,
    Reason.BODY_TOO_LARGE: 413,
    Reason.RATE_LIMITED: 429,
    Reason.UNAUTHORIZED: 401,
    Reason.FORBIDDEN: 403,
    Reason.AUTH_UNAVAILABLE: 503,
    Reason.RATE_LIMIT_UNAVAILABLE: 503,
    Reason.CONCURRENCY_LIMITED: 503,
    Reason.CONNECT_FAILURE: 502,
    Reason.UPSTREAM_TIMEOUT: 504,
    Reason.UPSTREAM_RESET: 502,
    Reason.INVALID_RESPONSE: 502,
    Reason.BREAKER_OPEN: 503,
    Reason.NO_HEALTHY_INSTANCE: 503,
    Reason.OVERFLOW: 503,
    Reason.DRAINING: 503,
    Reason.UPSTREAM_CUT: 502,
    Reason.UNFILTERABLE_RESPONSE: 502,
    Reason.CLIENT_DISCONNECT: 499,
    Reason.WEBSOCKET_DISABLED: 404,
    Reason.METHOD_NOT_ALLOWED: 405,
}
_TITLE = {
    Reason.NO_ROUTE: "No route matches this request",
    Reason.HEADERS_TOO_LARGE: "The request headers are too large",
    Reason.BODY_TOO_LARGE: "The request body is larger than this route takes",
    Reason.RATE_LIMITED: "Too many requests; retry later",
    Reason.UNAUTHORIZED: "Valid credentials are required",
    Reason.FORBIDDEN: "The credentials lack a required scope",
    Reason.AUTH_UNAVAILABLE: "The authentication service is unavailable",
    Reason.RATE_LIMIT_UNAVAILABLE: "Rate limiting is unavailable",
    Reason.CONCURRENCY_LIMITED: "The route's concurrency limit is reached",
    Reason.AMBIGUOUS_REQUEST: "Both Transfer-Encoding and Content-Length: the body is ambiguous",
    Reason.UNSUPPORTED_CODING: "Only one 'chunked' transfer coding is supported",
    Reason.AMBIGUOUS_PATH: "The request target is not a plain path or http(s) URL",
    Reason.BAD_HOST: "The Host header is missing, repeated or not a host",
    Reason.CONNECT_FAILURE: "Could not connect to an upstream instance",
    Reason.UPSTREAM_TIMEOUT: "The upstream did not answer in time",
    Reason.UPSTREAM_RESET: "The upstream closed the connection before answering",
    Reason.INVALID_RESPONSE: "The upstream's response is not valid HTTP",
    Reason.BREAKER_OPEN: "Every instance's circuit breaker is open",
    Reason.NO_HEALTHY_INSTANCE: "No healthy upstream instance",
    Reason.OVERFLOW: "Too many requests pending for this cluster",
    Reason.DRAINING: "The gateway is shutting down",
    Reason.UPSTREAM_CUT: "The upstream response was cut",
    Reason.UNFILTERABLE_RESPONSE: "The upstream's response could not be field-filtered",
    Reason.CLIENT_DISCONNECT: "The client went away",
    Reason.WEBSOCKET_DISABLED: "WebSocket upgrades are off on this route",
    Reason.METHOD_NOT_ALLOWED: "This route does not take the request's method",
}


def reason_for_code(code: ErrorCode) -> Reason:
    """The reason for a transport failure before the response head arrived."""
    if code in (
        ErrorCode.CONNECT_ERROR,
        ErrorCode.CONNECT_TIMEOUT,
        ErrorCode.DNS_ERROR,
        ErrorCode.TLS_ERROR,
    ):
        return Reason.CONNECT_FAILURE
    if code is ErrorCode.POOL_TIMEOUT:
        return Reason.OVERFLOW
    if code.is_timeout:
        return Reason.UPSTREAM_TIMEOUT
    return Reason.UPSTREAM_RESET
