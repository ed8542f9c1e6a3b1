"""DeadlinePlugin: one deadline for the whole logical request, retries included.

Envoy's route timeout covers every retry; flext-api does the same with an absolute
``request.deadline`` on the client's monotonic clock. This plugin sets it (from the
request's own ``timeout.total`` when given, else the configured total), refuses a
request whose deadline has already passed, and, with ``enforce`` (the default), cuts
the call off when the deadline passes, so even an attempt in flight cannot outlive it.
Every stage inside (retry sleeps, ``Retry-After``, limiter and bulkhead waits) measures
what is left against the same instant.
"""

from __future__ import annotations

import asyncio

from ..._clock import Clock
from ..._config import TimeoutConfig
from ..._errors import ErrorCode, FlextApiError
from ..._models import HttpRequest, HttpResponse
from ..._result import FlextResult
from .._plugin import CallNext, FlextApiPlugin

__all__ = ["DeadlinePlugin"]


def _deadline_exceeded(request: HttpRequest, message: str) -> FlextResult[HttpResponse]:
    return FlextResult.fail(
        FlextApiError.from_code(ErrorCode.DEADLINE_EXCEEDED, message, request=request)
    )


class DeadlinePlugin(FlextApiPlugin):
    """Set ``request.deadline`` and hold the call to it.

    ``timeout`` is a :class:`~flext_api.TimeoutConfig` (its ``total`` is used), a number
    of seconds, or None for the default total (60 s). A request without a deadline gets
    one from its own ``timeout.total`` (else this total; None: no deadline). A request
    that has one (a :class:`~flext_api.FlextApiClient` sets it from its timeout) keeps
    the earlier of the two when this plugin was given a timeout: deadlines only shrink.
    """

    name = "deadline"
    guarded = False  # built-in: the pipeline's shared guard reports its errors

    def __init__(
        self,
        timeout: TimeoutConfig | float | None = None,
        *,
        clock: Clock | None = None,
        enforce: bool = True,
    ) -> None:
        self._explicit = timeout is not None
        if timeout is None:
            timeout = TimeoutConfig()
        if isinstance(timeout, TimeoutConfig):
            total = timeout.total
        else:
            total = float(timeout)
            if not total > 0:
                raise ValueError(f"total timeout must be > 0 seconds, got {timeout!r}")
        self.total = total
        self.enforce = enforce
        self._init_clock(clock)

    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        """Set or check the deadline, then run the rest of the pipeline within it."""
        now = self._clock.monotonic()
        deadline = request.deadline
        if deadline is None:
            timeout = request.timeout
            total = timeout.total if timeout is not None else self.total
            if total is None:
                return await call_next(request)
            deadline = request.deadline = now + total
        elif self._explicit and self.total is not None and now + self.total < deadline:
            deadline = request.deadline = now + self.total
        elif now >= deadline:
            return _deadline_exceeded(
                request, f"deadline passed {now - deadline:.3g}s before the call started"
            )
        if not self.enforce:
            return await call_next(request)
        try:
            # The event loop's timer cuts off an attempt in flight; the stages inside
            # only see time through the injected clock.
            async with asyncio.timeout(deadline - now):
                return await call_next(request)
        except TimeoutError:
            return _deadline_exceeded(
                request, f"deadline of {deadline - now:.3g}s passed during the call"
            )

    def __repr__(self) -> str:
        total = "none" if self.total is None else f"{self.total:g}s"
        return f"<DeadlinePlugin total={total} enforce={self.enforce}>"
