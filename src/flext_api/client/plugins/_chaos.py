"""ChaosPlugin: inject faults into a fraction of calls (Polly's Simmy, Envoy's fault filter).

For staging and tests: it shows whether retries, breakers and deadlines behave as
intended before a real outage does. Place it innermost (just before the transport) so
every resilience stage sees the injected faults as if the server had produced them:

* an error fault returns that :class:`~flext_api.ErrorCode` without calling further;
* a latency fault sleeps on the injected clock, then makes the real call;
* a status fault answers a synthetic empty response (``Retry-After`` set when the
  fault has one) without calling further; a status >= 400 comes back as an
  ``HTTP_STATUS`` failure unless ``fail_on_http_error`` is off for the plugin or the
  request (``request.extensions["fail_on_http_error"]``), as a real one would.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from ..._clock import Clock
from ..._errors import ErrorCode, FlextApiError
from ..._models import HttpRequest, HttpResponse
from ..._result import FlextResult
from ...resilience import ChaosInjected, ChaosPolicy, EventHook, Fault, FaultKind
from ...resilience._chaos import DEFAULT_FAULTS
from ...resilience._events import Emitter
from .._plugin import CallNext, FlextApiPlugin
from ._common import host_key

__all__ = ["ChaosPlugin"]


class ChaosPlugin(FlextApiPlugin):
    """Inject one of ``faults`` into a fraction ``rate`` of calls (seeded with ``seed``)."""

    name = "chaos"
    guarded = False  # built-in: the pipeline's shared guard reports its errors

    def __init__(
        self,
        rate: float,
        faults: Sequence[Fault] = DEFAULT_FAULTS,
        *,
        seed: int | None = None,
        rng: random.Random | None = None,
        enabled: bool = True,
        fail_on_http_error: bool = True,
        clock: Clock | None = None,
        hooks: Sequence[EventHook] = (),
    ) -> None:
        self.policy = ChaosPolicy(rate, faults, seed=seed, rng=rng, enabled=enabled)
        self.fail_on_http_error = fail_on_http_error
        self._init_clock(clock)
        self._emitter = Emitter(hooks)

    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        """Maybe inject a fault; otherwise (or after a latency fault) call through."""
        fault = self.policy.pick()
        if fault is None:
            return await call_next(request)
        if self._emitter.active:
            self._emitter.emit(ChaosInjected(host_key(request), fault.describe()))
        if fault.kind is FaultKind.LATENCY:
            deadline = request.deadline
            if deadline is not None:
                left = deadline - self._clock.monotonic()
                if fault.latency >= left:
                    # The injected wait is time of the call: it cannot outlive its deadline.
                    await self._clock.sleep(max(0.0, left))
                    return FlextResult.fail(
                        FlextApiError.from_code(
                            ErrorCode.DEADLINE_EXCEEDED,
                            f"chaos: {fault.latency:g}s of injected latency passed the "
                            f"deadline of {request.method} {request.host}",
                            request=request,
                            details={"chaos": True},
                        )
                    )
            await self._clock.sleep(fault.latency)
            return await call_next(request)
        if fault.kind is FaultKind.ERROR:
            assert fault.code is not None  # guaranteed by Fault.__post_init__
            return FlextResult.fail(
                FlextApiError.from_code(
                    fault.code,
                    f"chaos: injected {fault.code} into {request.method} {request.host}",
                    request=request,
                    details={"chaos": True},
                )
            )
        return self._synthetic_response(request, fault)

    def _synthetic_response(self, request: HttpRequest, fault: Fault) -> FlextResult[HttpResponse]:
        status = fault.status or 503
        headers = {}
        if fault.retry_after is not None:
            # delay-seconds is an integer in RFC 9110; round up so we never ask for less.
            headers["Retry-After"] = str(math.ceil(fault.retry_after))
        response = HttpResponse(
            status, headers=headers, request=request, reason="Injected by chaos"
        )
        fail = request.extensions.get("fail_on_http_error", self.fail_on_http_error)
        error = response.error_for_status() if fail else None
        if error is not None:
            error.details["chaos"] = True
            return FlextResult.fail(error)
        return FlextResult.ok(response)

    def __repr__(self) -> str:
        return f"<ChaosPlugin {self.policy!r}>"
