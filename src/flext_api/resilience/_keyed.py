"""Per-key state with idle eviction, so per-host policies keep bounded memory.

Breakers, limiters, bulkheads and budgets are kept per host. A long-running client
that talks to many hosts (a crawler, a gateway) would otherwise keep one object per
host forever. A hit only stamps the entry's last-use time; a sweep over all entries
runs on access at most once per ``idle / 4`` seconds (no timers, no threads), so the
hot path is one dict lookup and one attribute write. An entry that is busy
(``can_evict`` says no: waiters queued, a manual breaker state) survives the sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["IdleMap"]

V = TypeVar("V")


def _always(_: object) -> bool:
    return True


class _Entry(Generic[V]):
    __slots__ = ("last_used", "value")

    def __init__(self, value: V, last_used: float) -> None:
        self.value = value
        self.last_used = last_used


class IdleMap(Generic[V]):
    """``key -> value`` where values unused for ``idle`` seconds are dropped.

    ``factory(key)`` builds a missing value. An entry is dropped by the first sweep
    after it has been idle ``idle`` seconds, so at most ``1.25 * idle`` after last use.
    """

    __slots__ = ("_can_evict", "_entries", "_factory", "_idle", "_next_sweep", "_sweep_every")

    def __init__(
        self,
        factory: Callable[[str], V],
        *,
        idle: float,
        can_evict: Callable[[V], bool] = _always,
    ) -> None:
        if not idle > 0:  # NaN too: it passes ``<= 0`` and then no sweep ever runs
            raise ValueError(f"idle must be > 0 seconds, got {idle!r}")
        self._factory = factory
        self._idle = idle
        self._can_evict = can_evict
        self._entries: dict[str, _Entry[V]] = {}
        self._sweep_every = idle / 4
        self._next_sweep = float("-inf")

    def get(self, key: str, now: float) -> V:
        """The value for ``key`` (created when missing), marked as used at ``now``."""
        if now >= self._next_sweep:
            self.evict_idle(now)
        entries = self._entries
        entry = entries.get(key)
        if entry is None:
            entry = _Entry(self._factory(key), now)
            entries[key] = entry
        else:
            entry.last_used = now
        return entry.value

    def peek(self, key: str) -> V | None:
        """The value for ``key`` without creating or touching it."""
        entry = self._entries.get(key)
        return None if entry is None else entry.value

    def evict_idle(self, now: float) -> int:
        """Drop entries idle for ``idle`` seconds or more; return how many were dropped."""
        self._next_sweep = now + self._sweep_every
        cutoff = now - self._idle
        entries = self._entries
        dropped = 0
        idle_keys = [key for key, entry in entries.items() if entry.last_used <= cutoff]
        for key in idle_keys:
            entry = entries[key]
            if self._can_evict(entry.value):
                del entries[key]
                dropped += 1
        return dropped

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def items(self) -> Iterator[tuple[str, V]]:
        """``(key, value)`` pairs, in creation order."""
        for key, entry in list(self._entries.items()):
            yield key, entry.value

    def values(self) -> Iterator[V]:
        """Every value, in creation order."""
        for entry in list(self._entries.values()):
            yield entry.value

    def __repr__(self) -> str:
        return f"<IdleMap {len(self._entries)} keys, idle={self._idle:g}s>"
