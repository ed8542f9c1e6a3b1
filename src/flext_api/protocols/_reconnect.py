"""Reconnect pacing shared by the SSE and WebSocket clients.

The delays come from the client's :class:`~flext_api.RetryPolicy` (exponential backoff
with full jitter, the testing switch honoured), so a stream reconnects the way a
request retries. A server's hint (SSE ``retry:``) is a floor under the backoff. The
count of consecutive failures is reset by the caller once a connection proves useful
(an event or a message arrived), so a long-lived stream is never "out of retries".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .._clock import Clock
from .._config import RetryConfig
from .._errors import ErrorCode, FlextApiError
from ..resilience import RetryPolicy

__all__ = ["Reconnect", "is_permanent"]

_PERMANENT_CODES = frozenset(
    {ErrorCode.INVALID_REQUEST, ErrorCode.CONFIG_ERROR, ErrorCode.AUTH_ERROR}
)


def is_permanent(error: FlextApiError) -> bool:
    """True when connecting again cannot help: bad input, refused credentials, or a 4xx
    other than 408/429 (WHATWG fails an event source on such a status instead of
    reconnecting). Drops, timeouts, 5xx, 408 and 429 are worth another attempt."""
    if error.code in _PERMANENT_CODES:
        return True
    if error.code is ErrorCode.HTTP_STATUS:
        status = error.response.status_code if error.response is not None else None
        status = status if status is not None else error.details.get("status")
        return isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)
    return False


@dataclass(slots=True)
class Reconnect:
    """Counts consecutive failed connections and says how long to wait before the next.

    ``max_attempts`` None means "forever"; 0 turns reconnecting off.
    """

    policy: RetryPolicy
    max_attempts: int | None = None
    failures: int = 0
    _pause: asyncio.Future[None] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_config(cls, config: RetryConfig, max_attempts: int | None = None) -> Reconnect:
        """Pacing from a client's retry config; ``max_attempts`` defaults to unbounded."""
        return cls(RetryPolicy(config), max_attempts)

    @property
    def exhausted(self) -> bool:
        """True when no further attempt is allowed."""
        return self.max_attempts is not None and self.failures >= self.max_attempts

    def delay(self, floor: float = 0.0) -> float:
        """Record one failure and return the wait before the next attempt."""
        delay = max(floor, self.policy.backoff(self.failures))
        self.failures += 1
        return delay

    async def wait(self, clock: Clock, floor: float = 0.0) -> None:
        """Record one failure and wait out its delay; :meth:`interrupt` cuts it short."""
        pause = self._pause = asyncio.ensure_future(clock.sleep(self.delay(floor)))
        try:
            await asyncio.wait((pause,))
        finally:
            self._pause = None
            pause.cancel()

    def interrupt(self) -> None:
        """End a :meth:`wait` in progress now (the stream or socket is being closed)."""
        if self._pause is not None:
            self._pause.cancel()

    def succeeded(self) -> None:
        """A connection delivered something: the next failure starts the backoff afresh."""
        self.failures = 0
