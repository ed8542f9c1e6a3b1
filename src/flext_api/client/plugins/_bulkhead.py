"""BulkheadPlugin: cap the calls in flight per host; queue a bounded few, FIFO.

The innermost resilience stage: a call holds a permit only while it is really in
flight (not while it waits in the rate limiter or sleeps between retries). The permit
is returned when the rest of the pipeline returns, that is once the response headers
are in: a streamed body read later no longer counts against the cap.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..._clock import Clock
from ..._config import BulkheadConfig
from ..._models import HttpRequest, HttpResponse
from ..._result import FlextResult
from ...resilience import Bulkhead, EventHook
from .._plugin import CallNext, FlextApiPlugin
from ._common import KeyFunc, host_key

__all__ = ["BulkheadPlugin"]


class BulkheadPlugin(FlextApiPlugin):
    """Per-host concurrency cap with a bounded queue (``BULKHEAD_FULL`` beyond it).

    Without ``config`` the figures of :class:`~flext_api.BulkheadConfig` (50 running,
    100 queued) apply and the plugin is on; an explicit config with ``enabled=False``
    makes it a pass-through. ``bulkhead`` shares one bulkhead between clients.
    """

    name = "bulkhead"
    guarded = False  # built-in: the pipeline's shared guard reports its errors

    def __init__(
        self,
        config: BulkheadConfig | None = None,
        *,
        bulkhead: Bulkhead | None = None,
        key: KeyFunc = host_key,
        clock: Clock | None = None,
        hooks: Sequence[EventHook] = (),
    ) -> None:
        self.config = config if config is not None else BulkheadConfig(enabled=True)
        self._init_clock(clock)
        self._owns_bulkhead = bulkhead is None
        self._hooks = tuple(hooks)
        self.bulkhead = (
            bulkhead
            if bulkhead is not None
            else Bulkhead.from_config(self.config, clock=self._clock, hooks=self._hooks)
        )
        self._key = key

    def _clock_changed(self, clock: Clock) -> None:
        # The bulkhead queues against request.deadline on its clock: it must be the client's.
        if self._owns_bulkhead:
            self.bulkhead = Bulkhead.from_config(self.config, clock=clock, hooks=self._hooks)

    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        """Take a permit (or queue for one within the deadline), run the call, give it back."""
        if not self.config.enabled:
            return await call_next(request)
        key = self._key(request)
        bulkhead = self.bulkhead
        error = (await bulkhead.acquire(key, request.deadline)).exception
        if error is not None:
            error.request = request
            return FlextResult.fail(error)
        try:
            return await call_next(request)
        finally:
            bulkhead.release(key)

    def __repr__(self) -> str:
        return f"<BulkheadPlugin {self.bulkhead!r}>"
