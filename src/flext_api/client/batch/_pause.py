"""Pausing hosts whose circuit is open, for the batch engine.

When an item of a batch fails with ``CIRCUIT_OPEN``, its host is paused: the item and
the host's later items are set aside (not sent) until the breaker's ``retry_after`` has
passed, then handed back to the workers. The pauses of one host add up to at most
``max_pause`` seconds; a wait that does not fit is refused, and the caller fails the
item instead (fail fast). A pause ends when its timer fires, not when a clock reading
says so, so a testing clock whose sleeps return at once makes pauses instant.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Generic, Protocol, TypeVar

import structlog

from ..._clock import Clock

__all__ = ["HostPauses"]

_log = structlog.get_logger("flext_api.client.batch")

# How long a host pauses on CIRCUIT_OPEN without retry_after (half-open, trials busy).
NO_HINT_PAUSE = 0.5


class _HasHost(Protocol):
    host: str


T = TypeVar("T", bound=_HasHost)


class _Pause:
    __slots__ = ("generation", "until")

    def __init__(self, until: float, generation: int) -> None:
        self.until = until
        self.generation = generation


class HostPauses(Generic[T]):
    """Paused hosts, the items set aside for them, and each host's pause budget.

    ``spawn`` runs a timer coroutine (the batch keeps and cancels its tasks);
    ``wake`` is called when set-aside items may be taken again.
    """

    def __init__(
        self,
        max_pause: float,
        clock: Clock,
        *,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        wake: Callable[[], None],
    ) -> None:
        self.max_pause = max_pause
        self._clock = clock
        self._spawn = spawn
        self._wake = wake
        self._pauses: dict[str, _Pause] = {}
        self._spent: dict[str, float] = {}
        self._deferred: dict[str, deque[T]] = {}
        self._generation = 0
        self.deferred = 0  # items set aside, all hosts

    @property
    def paused_hosts(self) -> int:
        """Hosts paused right now."""
        return len(self._pauses)

    def is_paused(self, host: str) -> bool:
        """True while ``host`` is paused."""
        return host in self._pauses

    def pause(self, host: str, retry_after: float | None) -> bool:
        """Pause ``host`` for ``retry_after``; False when that exceeds what is left."""
        if self.max_pause <= 0:
            return False
        now = self._clock.monotonic()
        wait = retry_after if retry_after is not None and retry_after > 0 else NO_HINT_PAUSE
        until = now + wait
        current = self._pauses.get(host)
        extra = until - max(now, current.until) if current is not None else wait
        if extra <= 0:
            return True  # already paused at least that long
        spent = self._spent.get(host, 0.0)
        if spent + extra > self.max_pause:
            _log.warning(
                "circuit open past the batch's pause budget: failing fast",
                host=host,
                retry_after=retry_after,
                paused=round(spent, 3),
                max_pause=self.max_pause,
            )
            return False
        self._spent[host] = spent + extra
        self._generation += 1
        self._pauses[host] = _Pause(until, self._generation)
        self._spawn(self._end(host, self._generation, wait))
        _log.info("circuit open: pausing host", host=host, seconds=round(wait, 3))
        return True

    async def _end(self, host: str, generation: int, wait: float) -> None:
        await self._clock.sleep(wait)
        pause = self._pauses.get(host)
        # A later, longer pause of the same host replaced this one: its timer ends it.
        if pause is not None and pause.generation == generation:
            del self._pauses[host]
            self._wake()

    def defer(self, item: T) -> None:
        """Set ``item`` aside until its host's pause ends."""
        self._deferred.setdefault(item.host, deque()).append(item)
        self.deferred += 1

    def resume_one(self) -> T | None:
        """A set-aside item whose host is no longer paused, or None."""
        for host, queue in self._deferred.items():
            if host not in self._pauses:
                item = queue.popleft()
                if not queue:
                    del self._deferred[host]
                self.deferred -= 1
                if not self.deferred:
                    # Workers waiting only for set-aside items may now be done.
                    self._wake()
                return item
        return None
