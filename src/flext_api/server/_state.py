"""``app.state.flext``: the per-app runtime of the factory.

Everything a middleware, dependency or endpoint of the stack needs at request time lives
here, one instance per app (so tests and several apps in one process never share
counters, limits or metrics): the config, the logger, metrics, the rate limiter, the
authenticator, readiness checks, resources, and the in-flight count used by the drain.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from flext_api._server_config import ServerConfig

from ._auth import Authenticator
from ._health import ReadinessCheck, ReadinessChecks
from ._lifespan import ResourceStack
from ._metrics import ServerMetrics
from ._ratelimit import RateLimitService

__all__ = ["FlextServerState"]

T = TypeVar("T")


class FlextServerState:
    """Runtime state of one app built by :func:`create_fastapi_app`."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        logger: Any,
        authenticator: Authenticator,
        metrics: ServerMetrics | None = None,
        rate_limiter: RateLimitService | None = None,
    ) -> None:
        self.config = config
        self.logger = logger
        self.authenticator = authenticator
        self.metrics = metrics
        self.rate_limiter = rate_limiter
        self.readiness = ReadinessChecks(timeout=config.health.check_timeout, logger=logger)
        self.resources = ResourceStack(logger=logger)
        self.in_flight = 0
        self.started = False
        self.draining = False
        self._idle: asyncio.Event | None = None
        self._drains = 0  # drain() calls waiting on _idle

    def __repr__(self) -> str:
        phase = "draining" if self.draining else "ready" if self.started else "starting"
        return (
            f"<FlextServerState [{phase} | {self.in_flight} in flight | "
            f"checks: {', '.join(self.readiness.names) or '-'}]>"
        )

    @property
    def ready(self) -> bool:
        """Started and not draining (the checks are run by ``/ready`` itself)."""
        return self.started and not self.draining

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        """Make ``/ready`` depend on ``await check()`` (False or an exception = not ready)."""
        self.readiness.add(name, check)

    def add_resource(self, resource: T) -> T:
        """Open ``resource`` at start-up (if not started yet) and close it at shutdown."""
        return self.resources.add(resource)

    def begin_drain(self) -> None:
        """Report not-ready from now on (called at shutdown; callable from a signal hook)."""
        self.draining = True

    def request_started(self) -> None:
        """Called by the in-flight middleware as a request enters the stack."""
        self.in_flight += 1  # one event loop per process: no lock needed

    def request_finished(self) -> None:
        """Called by the in-flight middleware as a request leaves the stack."""
        self.in_flight -= 1
        if self.in_flight == 0 and self._idle is not None:
            self._idle.set()

    async def drain(self, timeout: float | None = None) -> bool:
        """Begin the drain, then wait up to ``timeout`` (default: config) for 0 in flight.

        Returns True when every in-flight request finished in time.
        """
        self.begin_drain()
        if self.in_flight == 0:
            return True
        limit = self.config.health.drain_timeout if timeout is None else timeout
        # Every concurrent drain (a pre-stop hook's and the lifespan's) waits on the same
        # event: one drain replacing another's would leave the first waiting it out.
        idle = self._idle
        if idle is None or idle.is_set():  # set: requests ended, then more came in
            idle = self._idle = asyncio.Event()
        self._drains += 1
        try:
            await asyncio.wait_for(idle.wait(), limit)
        except TimeoutError:
            self.logger.warning("shutdown drain timed out", in_flight=self.in_flight)
            return False
        finally:
            self._drains -= 1
            if self._drains == 0:  # nobody waits: no event outlives its loop
                self._idle = None
        return True
