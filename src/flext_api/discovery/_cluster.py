"""``Cluster``: one service's instances, its healthy set and its balancer (sans-IO).

The registry keeps one cluster per service name; the gateway may use clusters directly.
Membership and health changes rebuild the balancer's set once, so a pick stays cheap.
When no instance is available (all down or ejected) the cluster "panics" as Envoy does
and balances over every instance: a call that may work beats a certain failure.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from .._errors import ErrorCode
from ._balancers import LoadBalancer
from ._health import HealthTracker, Transition
from ._instance import UNHEALTHY, ServiceChange, ServiceInstance, diff

__all__ = ["Cluster"]

_NONE: frozenset[str] = frozenset()
_INF = float("inf")


class Cluster:
    """The instances of one service, with health-aware balancing.

    Args:
        name: the service name.
        balancer: the balancer that picks among available instances.
        tracker: health records (shared by a registry's clusters); this cluster's are
            those of service ``name``, keyed by ``(name, instance id)``.
    """

    __slots__ = (
        "_next_expiry",
        "available",
        "balancer",
        "instances",
        "name",
        "panic",
        "picks",
        "stale",
        "tracker",
        "tracks_calls",
    )

    def __init__(self, name: str, balancer: LoadBalancer, tracker: HealthTracker) -> None:
        self.name = name
        self.balancer = balancer
        self.tracker = tracker
        self.instances: dict[str, ServiceInstance] = {}
        self.available: tuple[ServiceInstance, ...] = ()
        self.panic = False
        self.stale = False
        self.picks: dict[str, int] = {}
        self._next_expiry = _INF
        #: False when the balancer ignores call starts and ends (round robin, random,
        #: hashing): callers skip :meth:`on_start` and the balancer's ``on_finish``.
        self.tracks_calls = bool(getattr(balancer, "tracks_calls", True))

    # -- membership ---------------------------------------------------------------------------
    def replace(self, instances: Iterable[ServiceInstance], now: float) -> ServiceChange | None:
        """Make ``instances`` the whole membership; the change, if any."""
        new = {i.id: i for i in instances}
        change = diff(self.name, self.instances, new, stale=self.stale)
        if change is None:
            return None
        tracker = self.tracker
        service = self.name
        for inst in (*change.added, *change.updated):
            tracker.get(inst.id, service=service, declared_healthy=inst.health != UNHEALTHY)
            tracker.returned(inst.id, service=service)
        self.instances = new
        for gone in change.removed:
            self.picks.pop(gone.id, None)
            tracker.removed(gone.id, now, service=service)
        self.rebuild(now)
        return change

    def add(self, instance: ServiceInstance, now: float) -> ServiceChange | None:
        """Add (or replace) one instance; it takes traffic at once unless down."""
        return self.replace(
            [*(i for k, i in self.instances.items() if k != instance.id), instance], now
        )

    def remove(self, instance_id: str, now: float) -> ServiceChange | None:
        """Remove one instance; no new call goes to it from now on."""
        if instance_id not in self.instances:
            return None
        return self.replace([i for k, i in self.instances.items() if k != instance_id], now)

    def rebuild(self, now: float) -> None:
        """Recompute the available set and hand it to the balancer."""
        tracker = self.tracker
        service = self.name
        available = [
            i for i in self.instances.values() if tracker.available(i.id, now, service=service)
        ]
        self.panic = not available and bool(self.instances)
        self.available = tuple(available) if available else tuple(self.instances.values())
        expiry = _INF
        for inst in self.instances.values():
            until = tracker.get(inst.id, service=service).ejected_until
            if until is not None and now < until < expiry:
                expiry = until
        self._next_expiry = expiry
        self.balancer.update(self.available)

    # -- traffic ------------------------------------------------------------------------------
    def pick(
        self, now: float, key: str | None = None, exclude: Collection[str] = _NONE
    ) -> ServiceInstance | None:
        """An instance for the next call (None when the service has none)."""
        if now >= self._next_expiry:
            self.rebuild(now)  # an ejection ran out: the host is back
        chosen = self.balancer.pick(key, exclude)
        if chosen is not None:
            picks = self.picks
            ident = chosen.id
            picks[ident] = picks.get(ident, 0) + 1
        return chosen

    def on_start(self, instance: ServiceInstance) -> None:
        """A call to ``instance`` starts (least-request balancers count it)."""
        if self.tracks_calls:
            self.balancer.on_start(instance)

    def success_changes_nothing(self, instance_id: str) -> bool:
        """True when a success of ``instance_id`` would change no health state.

        The usual call, decided without a call into the tracker: a success of a host
        with no failure streak, no ejection and no failure-ratio window changes nothing
        (the tracker's own first test, kept in step with it).
        """
        tracker = self.tracker
        record = tracker._records.get((self.name, instance_id))
        return (
            record is not None
            and not (record.consecutive_5xx or record.consecutive_gateway)
            and record.ejected_until is None
            and tracker.outlier.failure_ratio is None
        )

    def record_call(
        self,
        instance: ServiceInstance,
        *,
        status: int | None,
        error: ErrorCode | None,
        latency: float,
        now: float,
    ) -> Transition | None:
        """Feed one call's outcome to the balancer and to outlier detection.

        With neither ``status`` nor ``error`` (a call cancelled, or refused by the
        instance's own breaker) only the balancer's in-flight count is released.
        """
        failed = error is not None or (status is not None and status >= 500)
        if status is None and error is None:
            # No outcome: cancelled, or refused by its own breaker. A balancer that
            # learns latency is told apart (``on_abandon``) so it learns nothing from it.
            if self.tracks_calls:
                abandon = getattr(self.balancer, "on_abandon", None)
                if abandon is not None:
                    abandon(instance)
                else:
                    self.balancer.on_finish(instance, latency, True)
            return None
        if self.tracks_calls:
            self.balancer.on_finish(instance, latency, not failed)
        tracker = self.tracker
        if not failed and self.success_changes_nothing(instance.id):
            return None
        if instance.id not in self.instances:
            return None  # removed meanwhile
        # Hosts out of the set (down or ejected) as of the last rebuild: O(1) per call.
        size = len(self.instances)
        out = size if self.panic else size - len(self.available)
        transition = tracker.record_call(
            instance.id,
            status=status,
            error=error,
            now=now,
            cluster_size=len(self.instances),
            ejected_in_cluster=out,
            service=self.name,
        )
        if transition is not None:
            self.rebuild(now)
        return transition

    def record_probe(self, instance_id: str, passed: bool, now: float) -> Transition | None:
        """Feed one active probe result; rebuilds the set when availability changed."""
        transition = self.tracker.record_probe(instance_id, passed, now, service=self.name)
        if transition is not None and instance_id in self.instances:
            self.rebuild(now)
        return transition

    # -- introspection ------------------------------------------------------------------------
    def describe(self, now: float) -> dict[str, Any]:
        """Instances with their live state and pick counts (for stats and admin pages)."""
        rows: list[dict[str, Any]] = []
        for inst in self.instances.values():
            record = self.tracker.get(inst.id, service=self.name)
            if not record.active_up:
                state = "down"
            elif record.ejected_until is not None and now < record.ejected_until:
                state = "ejected"
            else:
                state = "up"
            rows.append(
                {
                    "id": inst.id,
                    "url": inst.url,
                    "zone": inst.zone,
                    "weight": inst.weight,
                    "state": state,
                    "ejections": record.ejections,
                    "picks": self.picks.get(inst.id, 0),
                }
            )
        return {
            "instances": rows,
            "available": len(self.available) if not self.panic else 0,
            "panic": self.panic,
            "stale": self.stale,
            "balancer": self.balancer.kind,
        }

    def __repr__(self) -> str:
        return (
            f"<Cluster {self.name!r} [{len(self.available)} of {len(self.instances)} available"
            f"{', panic' if self.panic else ''}{', stale' if self.stale else ''}]>"
        )
