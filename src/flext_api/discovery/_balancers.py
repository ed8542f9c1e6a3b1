"""Load balancers: small sans-IO objects that pick one instance of a healthy set.

Every balancer does its work when the set changes (:meth:`LoadBalancer.update`) so that
a pick is a few operations: a schedule index for round robin, a bisect for weighted
random, two random draws for the power-of-two-choices balancers, a bisect on the ring
for consistent hashing. ``bench/discovery.py`` measures a pick at 10 and 100 instances.

* :class:`RoundRobin` - smooth weighted round robin: the whole cycle is precomputed with
  earliest-deadline-first scheduling (Envoy's EDF), so weights interleave instead of
  bursting (``a a a b`` becomes ``a b a a``) and a pick is one index step.
* :class:`RandomBalancer` - weighted random.
* :class:`LeastRequest` - power of two choices over in-flight calls divided by weight
  (Envoy's default ``LEAST_REQUEST``).
* :class:`PeakEwma` - Finagle's "peak EWMA": the cost of a host is its latency EWMA
  (jumping up at once on a slow call, decaying with time constant ``decay``) times its
  in-flight calls plus one; the cheaper of two random hosts wins.
* :class:`RingHash` (Karger's ring, as Envoy's ``RING_HASH``) - a key maps to the same
  host while the set is stable; a host joining moves about ``1/N`` of the keys.
* :class:`Maglev` (as Envoy's ``MAGLEV``) - consistent hashing through a prime-sized
  lookup table: one read per pick, even spread, few keys moved by a membership change.
* :class:`ZoneAware` - prefers the local zone's instances when it has enough of them.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from bisect import bisect, bisect_left
from collections.abc import Callable, Collection, Sequence
from itertools import accumulate
from typing import Protocol, runtime_checkable

from .._clock import Clock, get_clock
from .._errors import ConfigError
from ._instance import ServiceInstance

__all__ = [
    "BALANCERS",
    "LeastRequest",
    "LoadBalancer",
    "Maglev",
    "PeakEwma",
    "RandomBalancer",
    "RingHash",
    "RoundRobin",
    "ZoneAware",
    "make_balancer",
]

_NO_EXCLUDE: frozenset[str] = frozenset()
_random = random.random
_UNMEASURED = (0.0, 0.0)
#: Bounds of a latency sample, seconds: a measured host never looks unmeasured (0.0),
#: and no sample outweighs an hour or stays in the average for ever.
_MIN_LATENCY, _MAX_LATENCY = 1e-6, 3600.0


@runtime_checkable
class LoadBalancer(Protocol):
    """Picks one instance of the set given to :meth:`update`."""

    kind: str

    def update(self, instances: Sequence[ServiceInstance]) -> None:
        """Replace the set to pick from (called on every membership or health change)."""
        ...

    def pick(
        self, key: str | None = None, exclude: Collection[str] = _NO_EXCLUDE
    ) -> ServiceInstance | None:
        """One instance (None when the set is empty), avoiding ids in ``exclude``
        while another exists; ``key`` feeds consistent hashing."""
        ...

    def on_start(self, instance: ServiceInstance) -> None:
        """A call to ``instance`` starts (least-request and EWMA count it)."""
        ...

    def on_finish(self, instance: ServiceInstance, latency: float, ok: bool) -> None:
        """A call to ``instance`` ended after ``latency`` seconds."""
        ...


class _Base:
    """Shared parts: the instance list, exclusion, and no-op call accounting."""

    kind = "base"
    #: False when :meth:`on_start` and :meth:`on_finish` do nothing: callers may skip
    #: them. A balancer without the attribute is assumed to track its calls.
    tracks_calls = False
    __slots__ = ("_instances",)

    def __init__(self) -> None:
        self._instances: tuple[ServiceInstance, ...] = ()

    def update(self, instances: Sequence[ServiceInstance]) -> None:
        self._instances = tuple(instances)

    def _pick(self, key: str | None) -> ServiceInstance | None:
        raise NotImplementedError

    def pick(
        self, key: str | None = None, exclude: Collection[str] = _NO_EXCLUDE
    ) -> ServiceInstance | None:
        chosen = self._pick(key)
        if chosen is None or not exclude or chosen.id not in exclude:
            return chosen
        return self._pick_other(key, exclude, chosen)

    def _pick_other(
        self, key: str | None, exclude: Collection[str], first: ServiceInstance
    ) -> ServiceInstance:
        # A retry: try the balancer's own choice a few times, then any host not tried.
        for _ in range(4):
            chosen = self._pick(key)
            if chosen is not None and chosen.id not in exclude:
                return chosen
        rest = [i for i in self._instances if i.id not in exclude]
        return random.choice(rest) if rest else first

    def on_start(self, instance: ServiceInstance) -> None:
        return None

    def on_finish(self, instance: ServiceInstance, latency: float, ok: bool) -> None:
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} [{len(self._instances)} instances]>"


class RoundRobin(_Base):
    """Smooth weighted round robin over a precomputed EDF schedule."""

    kind = "round_robin"
    __slots__ = ("_next", "_schedule")

    #: Longest precomputed cycle; larger weight sums are scaled down to fit.
    max_schedule = 65536

    def __init__(self) -> None:
        super().__init__()
        self._schedule: list[ServiceInstance] = []
        self._next = 0

    def update(self, instances: Sequence[ServiceInstance]) -> None:
        super().update(instances)
        weights = [i.weight for i in self._instances]
        if weights:
            g = math.gcd(*weights)
            weights = [w // g for w in weights]
            total = sum(weights)
            if total > self.max_schedule:
                scale = self.max_schedule / total
                weights = [max(1, round(w * scale)) for w in weights]
        # Earliest deadline first: each host is due every 1/weight; ties go to the
        # earlier index, so equal weights give plain round robin.
        heap = [(1.0 / w, idx) for idx, w in enumerate(weights)]
        heapq.heapify(heap)
        schedule: list[ServiceInstance] = []
        for _ in range(sum(weights)):
            due, idx = heapq.heappop(heap)
            schedule.append(self._instances[idx])
            heapq.heappush(heap, (due + 1.0 / weights[idx], idx))
        self._schedule = schedule
        # Start at a random point so many clients do not march in step.
        self._next = random.randrange(len(schedule)) if schedule else 0

    def pick(
        self, key: str | None = None, exclude: Collection[str] = _NO_EXCLUDE
    ) -> ServiceInstance | None:
        # The schedule step inlined: one call per pick, no allocation.
        schedule = self._schedule
        if not schedule:
            return None
        index = self._next
        if index >= len(schedule):
            index = 0
        self._next = index + 1
        chosen = schedule[index]
        if exclude and chosen.id in exclude:
            return self._pick_other(key, exclude, chosen)
        return chosen

    def _pick(self, key: str | None) -> ServiceInstance | None:
        return RoundRobin.pick(self, key)


class RandomBalancer(_Base):
    """Weighted random choice (a bisect on cumulative weights)."""

    kind = "random"
    __slots__ = ("_cumulative", "_total", "_uniform")

    def __init__(self) -> None:
        super().__init__()
        self._cumulative: list[int] = []
        self._total = 0
        self._uniform = True

    def update(self, instances: Sequence[ServiceInstance]) -> None:
        super().update(instances)
        self._cumulative = list(accumulate(i.weight for i in self._instances))
        self._total = self._cumulative[-1] if self._cumulative else 0
        self._uniform = len({i.weight for i in self._instances}) <= 1

    def pick(
        self, key: str | None = None, exclude: Collection[str] = _NO_EXCLUDE
    ) -> ServiceInstance | None:
        # The draw inlined: one call per pick, no allocation.
        instances = self._instances
        if not instances:
            return None
        if self._uniform:
            chosen = instances[int(_random() * len(instances))]
        else:
            chosen = instances[bisect(self._cumulative, _random() * self._total)]
        if exclude and chosen.id in exclude:
            return self._pick_other(key, exclude, chosen)
        return chosen

    def _pick(self, key: str | None) -> ServiceInstance | None:
        return RandomBalancer.pick(self, key)


class LeastRequest(RandomBalancer):
    """Power of two choices: of two weighted-random hosts, the one with fewer calls
    in flight per unit of weight."""

    kind = "least_request"
    tracks_calls = True
    __slots__ = ("_active",)

    def __init__(self) -> None:
        super().__init__()
        # Keyed by id, kept across membership changes (calls in flight stay counted).
        self._active: dict[str, int] = {}

    def pick(
        self, key: str | None = None, exclude: Collection[str] = _NO_EXCLUDE
    ) -> ServiceInstance | None:
        # The two draws inlined: no allocation, one call besides the comparison.
        instances = self._instances
        n = len(instances)
        if n < 2:
            return instances[0] if n else None
        if self._uniform:
            first = instances[int(_random() * n)]
            second = instances[int(_random() * n)]
        else:
            cumulative, total = self._cumulative, self._total
            first = instances[bisect(cumulative, _random() * total)]
            second = instances[bisect(cumulative, _random() * total)]
        chosen = self._prefer(first, second)
        if exclude and chosen.id in exclude:
            return self._pick_other(key, exclude, chosen)
        return chosen

    def _pick(self, key: str | None) -> ServiceInstance | None:
        return LeastRequest.pick(self, key)

    def _prefer(self, first: ServiceInstance, second: ServiceInstance) -> ServiceInstance:
        """The less loaded of two draws: fewer calls in flight per unit of weight."""
        active = self._active
        if not active:
            return first
        load_first = active.get(first.id, 0) / first.weight
        return second if active.get(second.id, 0) / second.weight < load_first else first

    def on_start(self, instance: ServiceInstance) -> None:
        self._active[instance.id] = self._active.get(instance.id, 0) + 1

    def on_finish(self, instance: ServiceInstance, latency: float, ok: bool) -> None:
        left = self._active.get(instance.id, 0) - 1
        if left > 0:
            self._active[instance.id] = left
        else:
            self._active.pop(instance.id, None)

    def in_flight(self, instance_id: str) -> int:
        """Calls to ``instance_id`` now in flight (as counted by this balancer)."""
        return self._active.get(instance_id, 0)


class PeakEwma(LeastRequest):
    """Finagle's peak-EWMA balancer: latency EWMA x (in flight + 1), best of two.

    Args:
        decay: time constant of the average, in seconds (Finagle: 10 s).
        clock: the monotonic clock the decay runs on.
    """

    kind = "peak_ewma"
    __slots__ = ("_clock", "_decay", "_ewma")

    #: Cost of a host with calls in flight but no latency measured yet (Finagle's penalty).
    penalty = 1e6

    def __init__(self, decay: float = 10.0, clock: Clock | None = None) -> None:
        super().__init__()
        if not decay > 0:
            raise ConfigError("decay must be a positive number of seconds")
        self._decay = decay
        self._clock = get_clock(clock)
        self._ewma: dict[str, tuple[float, float]] = {}  # id -> (average, stamp)

    def update(self, instances: Sequence[ServiceInstance]) -> None:
        super().update(instances)
        ewma = self._ewma
        # Ids come and go for good (DNS-discovered pods, autoscaling): once the table
        # outgrows the set with room to spare, forget the ids neither in the set nor in
        # flight. The slack keeps the average of a host out of the set for a while
        # (ejected at most half the cluster), so it comes back with its own.
        if len(ewma) > 2 * len(self._instances) + 64:
            keep = {inst.id for inst in self._instances}
            keep.update(self._active)
            self._ewma = {ident: entry for ident, entry in ewma.items() if ident in keep}

    def _prefer(self, first: ServiceInstance, second: ServiceInstance) -> ServiceInstance:
        """The cheaper of two draws: latency average x (calls in flight + 1) / weight."""
        active, ewma, penalty = self._active, self._ewma, self.penalty
        pending = active.get(first.id, 0) if active else 0
        average = ewma.get(first.id, _UNMEASURED)[0]
        cost_first = (average * (pending + 1) if average else penalty * pending) / first.weight
        pending = active.get(second.id, 0) if active else 0
        average = ewma.get(second.id, _UNMEASURED)[0]
        cost_second = (average * (pending + 1) if average else penalty * pending) / second.weight
        return second if cost_second < cost_first else first

    def on_abandon(self, instance: ServiceInstance) -> None:
        """A call that ended with no outcome (cancelled, or refused by the host's own
        breaker): its in-flight count is released, and it is no latency sample (a
        refusal's near-zero time made the host look the cheapest)."""
        super().on_finish(instance, 0.0, True)

    def on_finish(self, instance: ServiceInstance, latency: float, ok: bool) -> None:
        super().on_finish(instance, latency, ok)
        if not latency >= _MIN_LATENCY:
            # A zero sample (a coarse or fake clock) read as "unmeasured" in _prefer and
            # cost the host the penalty per call in flight; a negative one made it the
            # cheapest for good, and a NaN one stayed in the average for ever.
            latency = _MIN_LATENCY
        elif latency > _MAX_LATENCY:
            latency = _MAX_LATENCY  # an infinite one would never decay
        now = self._clock.monotonic()
        previous = self._ewma.get(instance.id)
        if previous is None or latency > previous[0]:
            average = latency  # the peak: a slow call counts fully at once
        else:
            w = math.exp(-max(0.0, now - previous[1]) / self._decay)
            average = previous[0] * w + latency * (1.0 - w)
        self._ewma[instance.id] = (average, now)

    def latency(self, instance_id: str) -> float | None:
        """The current latency average of ``instance_id`` (None before its first call)."""
        entry = self._ewma.get(instance_id)
        return None if entry is None else entry[0]


def _hash64(data: str) -> int:
    return int.from_bytes(hashlib.blake2b(data.encode(), digest_size=8).digest(), "big")


_key_hashes: dict[str, int] = {}


def _key_hash(key: str) -> int:
    # Keys repeat (a user, a session): remember their hashes, within a bound.
    cached = _key_hashes.get(key)
    if cached is None:
        if len(_key_hashes) >= 65536:
            _key_hashes.clear()
        cached = _key_hashes[key] = _hash64(key)
    return cached


class RingHash(_Base):
    """Consistent hashing on a ring of ``replicas`` points per unit of weight.

    The ring holds at most :attr:`max_points` points (and at least one per host): when
    the weights would need more, every host's points are divided by the same power of
    two, so the ring keeps the weights' proportions and a host joining or leaving
    changes the others' points only when that divisor steps (then keys move as when the
    ring is built anew). A host's points are ``hash(id#0)``, ``hash(id#1)``, ... and
    remembered per host, so a rebuild (every membership or health change) hashes only
    the hosts that are new to it. A pick without a key falls back to weighted random.
    """

    kind = "ring_hash"
    __slots__ = ("_fallback", "_hashes", "_owners", "_points", "_replicas")

    #: Most points on the ring; larger sets get fewer points per host.
    max_points = 100_000

    def __init__(self, replicas: int = 160) -> None:
        super().__init__()
        if replicas < 1:
            raise ConfigError("replicas must be >= 1")
        self._replicas = replicas
        self._hashes: list[int] = []
        self._owners: list[ServiceInstance] = []
        # Per host: its point hashes in point order (a prefix serves fewer points) and
        # the ones on the ring now, sorted.
        self._points: dict[str, tuple[list[int], list[int]]] = {}
        self._fallback = RandomBalancer()

    @property
    def points(self) -> int:
        """Points on the ring now (at most :attr:`max_points`, at least one per host)."""
        return len(self._hashes)

    def _counts(self, hosts: Sequence[ServiceInstance]) -> list[int]:
        """Points per host: ``weight * replicas``, shifted right until the ring fits."""
        units = [inst.weight * self._replicas for inst in hosts]
        budget = self.max_points
        total = sum(units)
        # The first guess is the smallest shift that fits the exact total; max(1, ...)
        # may need one more step.
        shift = max(0, math.ceil(math.log2(total / budget))) if total > budget else 0
        while True:
            counts = [max(1, u >> shift) for u in units]
            if sum(counts) <= budget or all(c == 1 for c in counts):
                return counts
            shift += 1

    def update(self, instances: Sequence[ServiceInstance]) -> None:
        super().update(instances)
        self._fallback.update(self._instances)
        hosts = self._instances
        known = self._points
        points: dict[str, tuple[list[int], list[int]]] = {}
        # One int per point: the hash, with the host's index in the low bits (the order
        # is the hashes', ties broken by index). Each host's run is already sorted, so
        # the sort merges runs.
        bits = max(1, len(hosts).bit_length())
        packed: list[int] = []
        for index, (inst, count) in enumerate(zip(hosts, self._counts(hosts), strict=True)):
            ident = inst.id
            raw, ring = points.get(ident) or known.get(ident) or ([], [])
            if len(ring) != count:
                if len(raw) < count:
                    raw = raw + [_hash64(f"{ident}#{n}") for n in range(len(raw), count)]
                ring = sorted(raw[:count])
            points[ident] = (raw, ring)
            packed.extend([h << bits | index for h in ring])
        packed.sort()
        mask = (1 << bits) - 1
        self._hashes = [p >> bits for p in packed]
        self._owners = [hosts[p & mask] for p in packed]
        self._points = points  # hosts no longer in the set are forgotten

    def _pick(self, key: str | None) -> ServiceInstance | None:
        if key is None:
            return self._fallback.pick(None)
        hashes = self._hashes
        if not hashes:
            return None
        index = bisect_left(hashes, _key_hash(key))
        return self._owners[index if index < len(hashes) else 0]

    def _pick_other(
        self, key: str | None, exclude: Collection[str], first: ServiceInstance
    ) -> ServiceInstance:
        if key is None:
            return super()._pick_other(key, exclude, first)
        # Walk the ring clockwise to the next host not tried: the same for every retry.
        start = bisect_left(self._hashes, _key_hash(key))
        owners = self._owners
        for step in range(len(owners)):
            candidate = owners[(start + step) % len(owners)]
            if candidate.id not in exclude:
                return candidate
        return first

    def __repr__(self) -> str:
        return f"<RingHash [{len(self._instances)} instances, {len(self._hashes)} points]>"


class Maglev(_Base):
    """Maglev consistent hashing (Google's, as Envoy's ``MAGLEV``): a lookup table of
    ``table_size`` (a prime) slots filled by each host's own permutation, in turns
    proportional to weight. A pick is one table read; a joining host takes about its
    share of slots and moves few keys. A pick without a key is weighted random.
    """

    kind = "maglev"
    __slots__ = ("_fallback", "_size", "_table")

    def __init__(self, table_size: int = 5003) -> None:
        super().__init__()
        if table_size < 7 or any(table_size % d == 0 for d in range(2, int(table_size**0.5) + 1)):
            raise ConfigError("table_size must be a prime >= 7")
        self._size = table_size
        self._table: list[ServiceInstance] = []
        self._fallback = RandomBalancer()

    def update(self, instances: Sequence[ServiceInstance]) -> None:
        super().update(instances)
        self._fallback.update(self._instances)
        size = self._size
        hosts = sorted(self._instances, key=lambda i: i.id)
        if not hosts:
            self._table = []
            return
        offsets = [_hash64(f"{h.id}#offset") % size for h in hosts]
        skips = [_hash64(f"{h.id}#skip") % (size - 1) + 1 for h in hosts]
        nexts = [0] * len(hosts)
        top = max(h.weight for h in hosts)
        credit = [0.0] * len(hosts)
        table: list[ServiceInstance | None] = [None] * size
        filled = 0
        while filled < size:
            for k, host in enumerate(hosts):
                # Weighted turns: a host of weight w takes w/top of the rounds.
                credit[k] += host.weight / top
                if credit[k] < 1.0:
                    continue
                credit[k] -= 1.0
                slot = (offsets[k] + nexts[k] * skips[k]) % size
                while table[slot] is not None:
                    nexts[k] += 1
                    slot = (offsets[k] + nexts[k] * skips[k]) % size
                table[slot] = host
                nexts[k] += 1
                filled += 1
                if filled == size:
                    break
        self._table = [t for t in table if t is not None]

    def _pick(self, key: str | None) -> ServiceInstance | None:
        if key is None:
            return self._fallback.pick(None)
        table = self._table
        if not table:
            return None
        return table[_key_hash(key) % self._size]


class ZoneAware(_Base):
    """Prefers ``local_zone``'s instances while at least ``min_hosts`` of them are in
    the set; otherwise balances over all. ``inner`` makes the two inner balancers."""

    kind = "zone_aware"
    __slots__ = ("_all", "_local", "_local_ok", "local_zone", "min_hosts")

    def __init__(
        self, local_zone: str, inner: Callable[[], LoadBalancer] = RoundRobin, min_hosts: int = 1
    ) -> None:
        super().__init__()
        if min_hosts < 1:
            raise ConfigError("min_hosts must be >= 1")
        self.local_zone = local_zone
        self.min_hosts = min_hosts
        self._local = inner()
        self._all = inner()
        self._local_ok = False

    def update(self, instances: Sequence[ServiceInstance]) -> None:
        super().update(instances)
        local = [i for i in self._instances if i.zone == self.local_zone]
        self._local_ok = len(local) >= self.min_hosts
        self._local.update(local)
        self._all.update(self._instances)

    def pick(
        self, key: str | None = None, exclude: Collection[str] = _NO_EXCLUDE
    ) -> ServiceInstance | None:
        if self._local_ok:
            chosen = self._local.pick(key, exclude)
            if chosen is not None and (not exclude or chosen.id not in exclude):
                return chosen
        return self._all.pick(key, exclude)

    @property
    def tracks_calls(self) -> bool:  # type: ignore[override]
        """True when the inner balancers count calls."""
        return bool(getattr(self._all, "tracks_calls", True))

    def on_start(self, instance: ServiceInstance) -> None:
        self._local.on_start(instance)
        self._all.on_start(instance)

    def on_finish(self, instance: ServiceInstance, latency: float, ok: bool) -> None:
        self._local.on_finish(instance, latency, ok)
        self._all.on_finish(instance, latency, ok)

    def on_abandon(self, instance: ServiceInstance) -> None:
        """A call without an outcome, passed on to the inner balancers (see PeakEwma)."""
        for inner in (self._local, self._all):
            abandon = getattr(inner, "on_abandon", None)
            if abandon is not None:
                abandon(instance)
            else:
                inner.on_finish(instance, 0.0, True)


#: Balancer kinds by name, for configuration files (``balancer: least_request``).
BALANCERS: dict[str, Callable[[], LoadBalancer]] = {
    "round_robin": RoundRobin,
    "random": RandomBalancer,
    "least_request": LeastRequest,
    "peak_ewma": PeakEwma,
    "ring_hash": RingHash,
    "maglev": Maglev,
}


def make_balancer(kind: str | Callable[[], LoadBalancer]) -> Callable[[], LoadBalancer]:
    """A balancer factory from a name in :data:`BALANCERS` or a factory; ConfigError else."""
    if callable(kind):
        return kind
    try:
        return BALANCERS[kind]
    except KeyError:
        known = ", ".join(sorted(BALANCERS))
        raise ConfigError(f"unknown balancer {kind!r} (known: {known})") from None
