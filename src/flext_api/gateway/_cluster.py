"""A cluster at run time: its instances with their state, the upstream pool and budgets.

State that must outlive a reload (breakers, ejections, drain flags, in-flight counts) lives
on :class:`InstanceState`, keyed by instance id; :meth:`Cluster.build` hands the previous
cluster's states to the new one for every instance that remains, so a reload neither
forgives a failing instance nor forgets a drained one. The pool is kept too when its
settings did not change, so keep-alive connections survive the reload.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from .._clock import Clock, get_clock
from .._config import TimeoutConfig
from ..resilience import Admit, CircuitBreaker, Reject, RetryBudget
from ..transports import AiohttpTransport
from ._config import ClusterConfig, InstanceConfig
from ._reasons import Reason

__all__ = ["Cluster", "InstanceState"]


@dataclass(eq=False)
class InstanceState:
    """One upstream instance and what the gateway knows about it."""

    config: InstanceConfig
    breaker: CircuitBreaker
    consecutive_failures: int = 0
    ejected_until: float = 0.0
    ejections: int = 0
    drained: bool = False
    in_flight: int = 0
    requests: int = field(default=0)

    @property
    def id(self) -> str:
        """The instance id (its URL when the config gives none)."""
        return self.config.instance_id

    @property
    def url(self) -> str:
        """Base URL, no trailing slash."""
        return self.config.url

    def ejected(self, now: float) -> bool:
        """True while passive outlier ejection keeps the instance out of rotation."""
        return now < self.ejected_until

    def describe(self, now: float) -> dict[str, object]:
        """The admin API's view of this instance."""
        return {
            "id": self.id,
            "url": self.url,
            "weight": self.config.weight,
            "drained": self.drained,
            "ejected": self.ejected(now),
            "ejected_for": max(0.0, self.ejected_until - now),
            "consecutive_failures": self.consecutive_failures,
            "breaker": self.breaker.state.value,
            "in_flight": self.in_flight,
            "requests": self.requests,
        }


class Cluster:
    """A named set of instances behind one upstream pool."""

    __slots__ = ("_rotation", "budget", "clock", "config", "instances", "transport")

    def __init__(
        self,
        config: ClusterConfig,
        instances: Sequence[InstanceState],
        transport: AiohttpTransport,
        clock: Clock,
    ) -> None:
        self.config = config
        self.instances = tuple(instances)
        self.transport = transport
        self.clock = clock
        retry = config.retry
        self.budget = RetryBudget(
            ratio=retry.budget_ratio,
            min_retries=retry.budget_min_retries,
            window=retry.budget_window,
        )
        weighted = [s for s in self.instances for _ in range(s.config.weight)]
        self._rotation = itertools.cycle(weighted)

    @classmethod
    def build(
        cls, config: ClusterConfig, previous: Cluster | None, clock: Clock | None = None
    ) -> Cluster:
        """A cluster for ``config``, keeping ``previous``'s state for remaining instances."""
        clock = get_clock(clock)
        old = {s.id: s for s in previous.instances} if previous is not None else {}
        states = []
        for instance in config.instances:
            kept = old.get(instance.instance_id)
            if kept is not None and kept.breaker.config == config.breaker:
                kept.config = instance
                states.append(kept)
            else:
                breaker = CircuitBreaker(config.breaker, key=instance.instance_id)
                if kept is not None:
                    states.append(
                        InstanceState(
                            instance,
                            breaker,
                            ejected_until=kept.ejected_until,
                            drained=kept.drained,
                        )
                    )
                else:
                    states.append(InstanceState(instance, breaker))
        if previous is not None and previous.config.pool == config.pool:
            transport = previous.transport
        else:
            transport = AiohttpTransport(
                config.pool,
                TimeoutConfig(connect=config.timeouts.connect),
                clock=clock,
                passthrough=True,
            )
        return cls(config, states, transport, clock)

    @property
    def name(self) -> str:
        """The cluster's name."""
        return self.config.name

    def pick(self, exclude: set[str]) -> tuple[InstanceState, Admit] | Reason:
        """The next instance to try (not in ``exclude`` when another is available).

        Returns the instance and its breaker admission, or the reason none can be used.
        """
        now = self.clock.monotonic()
        saw_open_breaker = False
        candidates = 0
        fallback: tuple[InstanceState, Admit] | None = None
        for _ in range(len(self.instances) * max(1, self._max_weight())):
            state = next(self._rotation)
            if state.drained or state.ejected(now):
                continue
            candidates += 1
            if state.id in exclude and fallback is not None:
                continue
            admit = state.breaker.allow(now)
            if isinstance(admit, Reject):
                saw_open_breaker = True
                continue
            if state.id not in exclude:
                if fallback is not None:
                    state_f, admit_f = fallback
                    state_f.breaker.release(admit_f)
                return state, admit
            fallback = (state, admit)
        if fallback is not None:
            return fallback
        if saw_open_breaker:
            return Reason.BREAKER_OPEN
        return Reason.NO_HEALTHY_INSTANCE

    def _max_weight(self) -> int:
        return max((s.config.weight for s in self.instances), default=1)

    def report(self, state: InstanceState, admit: Admit, *, ok: bool, duration: float) -> None:
        """Record the outcome of one attempt on ``state`` (breaker and passive ejection)."""
        now = self.clock.monotonic()
        if ok:
            state.breaker.on_success(now, duration, admit)
            state.consecutive_failures = 0
            return
        state.breaker.on_failure(now, duration, admit)
        passive = self.config.health.passive
        state.consecutive_failures += 1
        if passive.enabled and state.consecutive_failures >= passive.consecutive_failures:
            ejected = sum(1 for s in self.instances if s.ejected(now))
            if (ejected + 1) / len(self.instances) <= passive.max_ejected_ratio:
                state.ejections += 1
                state.ejected_until = now + passive.ejection * min(state.ejections, 10)
                state.consecutive_failures = 0

    def find(self, instance_id: str) -> InstanceState | None:
        """The instance with this id, or None."""
        return next((s for s in self.instances if s.id == instance_id), None)

    def describe(self) -> dict[str, object]:
        """The admin API's view of this cluster."""
        now = self.clock.monotonic()
        return {
            "name": self.name,
            "balancer": self.config.balancer,
            "instances": [s.describe(now) for s in self.instances],
            "pool": self.transport.stats(),
        }
