"""RateLimitPlugin: wait for the host's rate limiter, then tell it what the server said.

Each attempt waits in the per-host limiter until its slot, within ``request.deadline``
(``RATE_LIMITED`` with ``retry_after`` when the slot lies past it). After the call,
the server's throttling answer is fed back (``adaptive``): a 429 halves the host's
rate, and ``Retry-After`` (on a 429 or 503) or ``RateLimit-Remaining: 0`` with its
reset pauses the host until then. See :class:`~flext_api.resilience.RateLimiter`.

The limiter must run on the same clock as the client, since the deadline is an
instant on that clock. With ``config.redis_url`` set, the limit is shared across
processes through :class:`~flext_api.resilience.RedisRateLimiter`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..._clock import Clock
from ..._config import RateLimitConfig
from ..._models import HttpRequest, HttpResponse
from ..._result import FlextResult
from ...resilience import (
    AsyncLimiter,
    EventHook,
    RateLimiter,
    rate_limit_remaining,
    server_delay_hint,
)
from .._plugin import CallNext, FlextApiPlugin
from ._common import KeyFunc, host_key, response_of

__all__ = ["RateLimitPlugin"]


class RateLimitPlugin(FlextApiPlugin):
    """Per-host client-side rate limit that waits within the deadline.

    Without ``config`` the limiter uses :class:`~flext_api.RateLimitConfig`'s figures
    (10/s, burst 1, adaptive) and is on; an explicit config with ``enabled=False``
    turns the plugin into a pass-through. ``limiter`` replaces the one built from the
    config (share one limiter between clients that call the same API).
    """

    name = "rate_limit"
    guarded = False  # built-in: the pipeline's shared guard reports its errors

    def __init__(
        self,
        config: RateLimitConfig | None = None,
        *,
        limiter: AsyncLimiter | None = None,
        key: KeyFunc = host_key,
        clock: Clock | None = None,
        hooks: Sequence[EventHook] = (),
    ) -> None:
        self.config = config if config is not None else RateLimitConfig(enabled=True)
        self._init_clock(clock)
        self._owns_limiter = limiter is None
        if limiter is None:
            limiter = self._build_limiter(self.config, self._clock, hooks)
        self.limiter = limiter
        self._key = key
        self._hooks = tuple(hooks)

    def _clock_changed(self, clock: Clock) -> None:
        # The limiter compares request.deadline with its clock: it must be the client's.
        if self._owns_limiter:
            self.limiter = self._build_limiter(self.config, clock, self._hooks)

    @staticmethod
    def _build_limiter(
        config: RateLimitConfig, clock: Clock, hooks: Sequence[EventHook]
    ) -> AsyncLimiter:
        if config.redis_url:
            from ...resilience import RedisRateLimiter  # needs the 'redis' extra

            return RedisRateLimiter.from_config(config, clock=clock, hooks=hooks)
        return RateLimiter.from_config(config, clock=clock, hooks=hooks)

    async def cleanup(self) -> None:
        """Close the limiter's connections when this plugin opened them."""
        aclose = getattr(self.limiter, "aclose", None)
        if self._owns_limiter and aclose is not None:
            await aclose()

    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        """Wait for a slot, run the call, feed the server's throttling back."""
        if not self.config.enabled:
            return await call_next(request)
        key = self._key(request)
        error = (await self.limiter.acquire(key, request.deadline)).exception
        if error is not None:
            error.request = request
            return FlextResult.fail(error)
        result = await call_next(request)
        if self.config.adaptive:
            await self._feedback(key, result)
        return result

    async def _feedback(self, key: str, result: FlextResult[HttpResponse]) -> None:
        response = response_of(result)
        if response is None:
            return
        status = response.status_code
        headers = response.headers
        throttled = status == 429
        if not throttled and status != 503 and rate_limit_remaining(headers) != 0:
            return
        hint = server_delay_hint(status, headers, self._clock.time())
        if throttled or hint is not None:
            await self.limiter.afeedback(
                key,
                self._clock.monotonic(),
                retry_after=hint,
                throttled=throttled,
                reason=f"HTTP {status}",
            )

    def __repr__(self) -> str:
        return f"<RateLimitPlugin {self.limiter!r}>"
