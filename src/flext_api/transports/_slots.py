"""Request slots of a transport's pool: a first-come queue with a bounded wait.

Every transport holds one slot per request in flight (``PoolConfig.max_connections``).
A request finds a free slot at once (``free > 0 and not waiters``, read inline on the
hot path) or queues for one; a slot given back goes straight to the oldest waiter. The
wait is bounded by ``TimeoutConfig.pool`` (``POOL_TIMEOUT``) or by the time left to the
request's deadline when that is shorter (``DEADLINE_EXCEEDED``). A slot handed over in
the same loop step as the waiter timed out or was cancelled is given back, never lost.
"""

from __future__ import annotations

import asyncio
from collections import deque

from .._config import TimeoutConfig
from .._errors import ErrorCode
from .._models import HttpRequest
from ._base import transport_error

__all__ = ["PoolSlots"]


class PoolSlots:
    """``size`` request slots; ``free`` and ``waiters`` are read inline by the transports."""

    __slots__ = ("free", "size", "waiters")

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self.waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """Requests queued for a slot."""
        return sum(1 for w in self.waiters if not w.done())

    async def wait(
        self, request: HttpRequest, timeout: TimeoutConfig, remaining: float | None
    ) -> None:
        """Queue for a slot; a typed error when none comes within the bound."""
        wait, code = timeout.pool, ErrorCode.POOL_TIMEOUT
        if remaining is not None and (wait is None or remaining < wait):
            wait, code = remaining, ErrorCode.DEADLINE_EXCEEDED
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            async with asyncio.timeout(wait):
                await waiter
        except TimeoutError as exc:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot in the same step as the timeout fired
            message = f"no free connection within {wait:.3g}s (pool of {self.size} in use)"
            raise transport_error(code, message, request, exc) from exc
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot just as this waiter gave up
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
                self.waiters.remove(waiter)

    def give(self) -> None:
        """Give a slot back: to the oldest live waiter, else to the free count."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1
