"""HedgingPlugin: a second attempt for a slow idempotent request; the first success wins.

Opt-in (not in the default pipeline). Only requests that are safe to send twice are
hedged: an idempotent method (GET HEAD PUT DELETE OPTIONS TRACE), a non-blank
``Idempotency-Key`` header or ``request.extensions["idempotent"]`` set (the caller
vouches for it, as for retries: a GraphQL query sent with POST), and a replayable
body. Each hedged attempt gets its own copy of the request; the losers are cancelled
and any response they produced anyway is closed. No hedge starts at or past the
request's deadline (a delay longer than the time left means no hedge at all). Put it
inside the retry stage and outside the breaker, so each hedged attempt is one call the
host's breaker sees. See :func:`flext_api.resilience.hedge`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ..._clock import Clock
from ..._config import IDEMPOTENT_METHODS
from ..._models import HttpRequest, HttpResponse
from ..._result import FlextResult
from ...resilience import EventHook, HedgeStarted, hedge
from ...resilience._events import Emitter
from .._plugin import CallNext, FlextApiPlugin
from ._common import close_response, has_idempotency_key, host_key

__all__ = ["HedgingPlugin"]


class HedgingPlugin(FlextApiPlugin):
    """Start up to ``max_hedged`` extra attempts, ``delay`` seconds apart."""

    name = "hedging"
    guarded = False  # built-in: the pipeline's shared guard reports its errors

    def __init__(
        self,
        delay: float,
        *,
        max_hedged: int = 1,
        methods: Iterable[str] = IDEMPOTENT_METHODS,
        clock: Clock | None = None,
        hooks: Sequence[EventHook] = (),
    ) -> None:
        if not (0 <= delay < math.inf):  # NaN would never hedge, inf never either
            raise ValueError(f"hedging delay must be finite seconds >= 0, got {delay!r}")
        if max_hedged < 1:
            raise ValueError(f"max_hedged must be >= 1, got {max_hedged!r}")
        self.delay = delay
        self.max_hedged = max_hedged
        self.methods = frozenset(m.upper() for m in methods)
        self._init_clock(clock)
        self._emitter = Emitter(hooks)

    def _can_hedge(self, request: HttpRequest) -> bool:
        if not request.is_replayable:
            return False
        if request.method.upper() in self.methods:
            return True
        return has_idempotency_key(request) or bool(request.extensions.get("idempotent"))

    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        """Hedge a safe request; pass anything else straight through."""
        if not self._can_hedge(request):
            return await call_next(request)

        async def attempt(index: int) -> FlextResult[HttpResponse]:
            if index == 0:
                return await call_next(request)
            copy = request.copy()
            copy.extensions["hedge"] = index
            return await call_next(copy)

        def started(index: int, after: float) -> None:
            if self._emitter.active:
                self._emitter.emit(HedgeStarted(host_key(request), index, after))

        return await hedge(
            attempt,
            delay=self.delay,
            max_hedged=self.max_hedged,
            clock=self._clock,
            discard=close_response,
            on_hedge=started,
            deadline=request.deadline,
        )

    def __repr__(self) -> str:
        return f"<HedgingPlugin delay={self.delay:g}s max_hedged={self.max_hedged}>"
