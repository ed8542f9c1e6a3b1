"""Circuit breakers per key (host by default), created on first use, evicted when idle.

One breaker per dependency is what makes a breaker useful: a failing host must not
block calls to a healthy one. Python breakers need one object per dependency created
by hand (research notes §4.5); Polly's MS hedging handler and Envoy keep one per
endpoint. Breakers unused for ``idle_eviction`` seconds are dropped, so a client that
talks to many hosts keeps bounded memory, except breakers in a manual state, which
stay until reset.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from .._config import BreakerConfig
from ._breaker import CircuitBreaker
from ._events import Emitter, EventHook
from ._keyed import IdleMap

__all__ = ["BreakerRegistry"]


def _evictable(breaker: CircuitBreaker) -> bool:
    return not breaker.is_manual


class BreakerRegistry:
    """``key -> CircuitBreaker``, every breaker built from the same config.

    ``rng`` seeds the open-time jitter of every breaker (reproducible tests).

    >>> registry = BreakerRegistry()
    >>> registry.get("api.example.com", now=0.0) is registry.get("api.example.com", now=1.0)
    True
    """

    __slots__ = ("_breakers", "_emitter", "_rng", "config")

    def __init__(
        self,
        config: BreakerConfig | None = None,
        *,
        rng: random.Random | None = None,
        hooks: Sequence[EventHook] = (),
    ) -> None:
        self.config = config if config is not None else BreakerConfig()
        self._rng = rng if rng is not None else random.Random()
        self._emitter = Emitter(hooks)
        self._breakers: IdleMap[CircuitBreaker] = IdleMap(
            self._create, idle=self.config.idle_eviction, can_evict=_evictable
        )

    def _create(self, key: str) -> CircuitBreaker:
        return CircuitBreaker(self.config, key=key, rng=self._rng, hooks=self._emitter)

    def get(self, key: str, now: float) -> CircuitBreaker:
        """The breaker for ``key`` (created closed when missing)."""
        return self._breakers.get(key, now)

    def peek(self, key: str) -> CircuitBreaker | None:
        """The breaker for ``key`` if one exists, without creating it."""
        return self._breakers.peek(key)

    def evict_idle(self, now: float) -> int:
        """Drop breakers idle for ``idle_eviction`` seconds; return how many."""
        return self._breakers.evict_idle(now)

    def __len__(self) -> int:
        return len(self._breakers)

    def __contains__(self, key: object) -> bool:
        return key in self._breakers

    def __iter__(self) -> Iterator[tuple[str, CircuitBreaker]]:
        return self._breakers.items()

    def __repr__(self) -> str:
        states: dict[str, int] = {}
        for breaker in self._breakers.values():
            states[breaker.state.value] = states.get(breaker.state.value, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        return f"<BreakerRegistry [{summary or 'empty'}]>"
