"""Small helpers shared by the resilience plugins: keys, responses, closing."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import structlog

from ..._models import HttpRequest, HttpResponse
from ..._result import FlextResult

__all__ = [
    "IDEMPOTENCY_HEADER",
    "KeyFunc",
    "close_response",
    "has_idempotency_key",
    "host_key",
    "response_of",
]

IDEMPOTENCY_HEADER = "Idempotency-Key"

_log = structlog.get_logger("flext_api.client.plugins")

#: Maps a request to the key of its per-host policy (breaker, limiter, bulkhead, budget).
KeyFunc: TypeAlias = Callable[[HttpRequest], str]


def has_idempotency_key(request: HttpRequest) -> bool:
    """Whether ``request`` carries a usable ``Idempotency-Key``: a blank one is no key (no
    server can deduplicate on it), for retries and hedging alike."""
    return bool(request.headers.get(IDEMPOTENCY_HEADER, "").strip())


def host_key(request: HttpRequest) -> str:
    """The default policy key: ``host[:port]`` of the URL, lower-cased."""
    return request.host


def response_of(result: FlextResult[HttpResponse]) -> HttpResponse | None:
    """The response behind a result: its value, or the response an error carries."""
    error = result.exception
    return result.value if error is None else error.response


async def close_response(result: FlextResult[HttpResponse]) -> None:
    """Release the connection of a response that will not be handed to the caller.

    A failure to close is logged, not raised: the call has already moved on (a retry,
    a hedge winner) and the transport's pool reclaims the connection anyway.
    """
    response = response_of(result)
    if response is None:
        return
    try:
        await response.aclose()
    except Exception as exc:  # noqa: BLE001 - see docstring: logged, the call goes on
        _log.warning(
            "closing a discarded response failed",
            error=f"{type(exc).__name__}: {exc}",
            status=response.status_code,
        )
