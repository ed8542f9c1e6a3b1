"""Balancers: distribution, least-request, peak EWMA, ring hash, zone preference."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

import pytest

from flext_api._errors import ConfigError
from flext_api.discovery import (
    BALANCERS,
    Cluster,
    HealthTracker,
    LeastRequest,
    LoadBalancer,
    Maglev,
    PeakEwma,
    RandomBalancer,
    RingHash,
    RoundRobin,
    ServiceInstance,
    ZoneAware,
    make_balancer,
)
from flext_api.testing import FakeClock


def _instances(
    n: int, weights: list[int] | None = None, zone: str | None = None
) -> list[ServiceInstance]:
    return [
        ServiceInstance(
            id=f"i{k}",
            name="svc",
            url=f"http://10.0.0.{k}:80",
            weight=weights[k] if weights else 1,
            zone=zone,
        )
        for k in range(n)
    ]


def test_weighted_round_robin_matches_weights_within_one_percent() -> None:
    """Over 10,000 picks each instance gets its weight's share within 1 %."""
    weights = [1, 2, 3, 4]
    rr = RoundRobin()
    rr.update(_instances(4, weights))
    counts = Counter(rr.pick().id for _ in range(10_000))  # type: ignore[union-attr]
    for k, w in enumerate(weights):
        assert abs(counts[f"i{k}"] / 10_000 - w / 10) < 0.01


def test_round_robin_interleaves_weights_smoothly() -> None:
    """A heavy instance is not picked in one burst: no run longer than its weight share."""
    rr = RoundRobin()
    rr.update(_instances(2, [3, 1]))
    picks = "".join(rr.pick().id[-1] for _ in range(8))  # type: ignore[union-attr]
    assert "0000" not in picks and picks.count("1") == 2


def test_round_robin_with_equal_weights_visits_each_in_turn() -> None:
    """Equal weights cycle through every instance once per round."""
    rr = RoundRobin()
    rr.update(_instances(5))
    seen = [rr.pick().id for _ in range(10)]  # type: ignore[union-attr]
    assert sorted(seen[:5]) == [f"i{k}" for k in range(5)] and seen[:5] == seen[5:]


def test_round_robin_scales_huge_weight_sums_to_its_schedule_cap() -> None:
    """Weights summing past the cap are scaled; the schedule stays bounded."""

    class Small(RoundRobin):
        max_schedule = 100

    rr = Small()
    rr.update(_instances(3, [9999, 9998, 1]))
    assert len(rr._schedule) <= 101


def test_empty_set_picks_nothing() -> None:
    """Every balancer returns None for an empty set."""
    for factory in BALANCERS.values():
        balancer = factory()
        balancer.update([])
        assert balancer.pick() is None, factory


def test_pick_avoids_excluded_ids_while_another_exists() -> None:
    """A retry's exclusion is honoured by every balancer, and ignored when all are tried."""
    for factory in BALANCERS.values():
        balancer = factory()
        balancer.update(_instances(3))
        for _ in range(20):
            chosen = balancer.pick("k", exclude={"i0", "i1"})
            assert chosen is not None and chosen.id == "i2", factory
        assert balancer.pick("k", exclude={"i0", "i1", "i2"}) is not None


def test_weighted_random_follows_weights() -> None:
    """Weighted random gives a 9:1 split roughly 9:1."""
    balancer = RandomBalancer()
    balancer.update(_instances(2, [9, 1]))
    counts = Counter(balancer.pick().id for _ in range(5000))  # type: ignore[union-attr]
    assert 0.85 < counts["i0"] / 5000 < 0.95


def test_least_request_sends_less_to_a_busy_instance() -> None:
    """P2C sends fewer picks to an instance with many calls in flight."""
    balancer = LeastRequest()
    instances = _instances(3)
    balancer.update(instances)
    for _ in range(10):
        balancer.on_start(instances[0])
    counts = Counter(balancer.pick().id for _ in range(3000))  # type: ignore[union-attr]
    assert counts["i0"] < counts["i1"] / 2 and counts["i0"] < counts["i2"] / 2


def test_least_request_forgets_finished_calls() -> None:
    """on_finish releases the in-flight count."""
    balancer = LeastRequest()
    inst = _instances(1)[0]
    balancer.on_start(inst)
    balancer.on_finish(inst, 0.01, True)
    assert balancer.in_flight("i0") == 0


def test_peak_ewma_sends_less_to_a_slow_instance() -> None:
    """With P2C on latency EWMA, a slow instance gets far fewer picks."""
    clock = FakeClock()
    balancer = PeakEwma(clock=clock)
    instances = _instances(3)
    balancer.update(instances)
    counts: Counter[str] = Counter()
    for _ in range(3000):
        chosen = balancer.pick()
        assert chosen is not None
        counts[chosen.id] += 1
        balancer.on_start(chosen)
        clock.advance(0.001)
        balancer.on_finish(chosen, 0.5 if chosen.id == "i0" else 0.01, True)
    assert counts["i0"] < counts["i1"] / 3


def test_peak_ewma_jumps_to_a_peak_and_decays() -> None:
    """A slow call counts fully at once; fast calls then pull the average down."""
    clock = FakeClock()
    balancer = PeakEwma(decay=1.0, clock=clock)
    inst = _instances(1)[0]
    balancer.on_finish(inst, 0.1, True)
    balancer.on_finish(inst, 1.0, True)
    assert balancer.latency("i0") == 1.0
    clock.advance(5.0)
    balancer.on_finish(inst, 0.1, True)
    latency = balancer.latency("i0")
    assert latency is not None and latency < 0.2


def test_peak_ewma_rejects_a_bad_decay() -> None:
    """A non-positive decay is a ConfigError."""
    with pytest.raises(ConfigError):
        PeakEwma(decay=0)


def test_ring_hash_is_stable_for_a_key() -> None:
    """The same key maps to the same instance while the set is stable."""
    ring = RingHash()
    ring.update(_instances(5))
    first = ring.pick("user-42")
    assert all(ring.pick("user-42") == first for _ in range(10))


def test_ring_hash_moves_about_one_nth_of_keys_when_an_instance_joins() -> None:
    """Adding a 6th instance moves at most ~1/6 of 10,000 keys (with slack for variance)."""
    ring = RingHash()
    ring.update(_instances(5))
    before = {k: ring.pick(f"key-{k}") for k in range(10_000)}
    ring.update(_instances(6))
    moved = sum(1 for k, inst in before.items() if ring.pick(f"key-{k}") != inst)
    assert moved / 10_000 <= 1 / 6 * 1.35
    movers = {ring.pick(f"key-{k}") for k, inst in before.items() if ring.pick(f"key-{k}") != inst}
    assert {m.id for m in movers if m is not None} == {"i5"}


def test_ring_hash_without_key_spreads_randomly() -> None:
    """No key: the ring falls back to weighted random over every instance."""
    ring = RingHash()
    ring.update(_instances(3))
    assert {ring.pick().id for _ in range(200)} == {"i0", "i1", "i2"}  # type: ignore[union-attr]


def test_ring_hash_retry_walks_the_ring_to_the_same_next_host() -> None:
    """Excluding the key's host gives the same next host every time."""
    ring = RingHash()
    ring.update(_instances(4))
    first = ring.pick("k")
    assert first is not None
    nxt = {ring.pick("k", exclude={first.id}) for _ in range(5)}
    assert len(nxt) == 1 and first not in nxt


def test_ring_hash_large_weights_stay_within_max_points() -> None:
    """30 hosts of weight 10,000 share at most max_points points, each host holding some."""
    ring = RingHash()
    ring.update(_instances(30, [10_000] * 30))
    assert 30 <= ring.points <= RingHash.max_points
    assert repr(ring) == f"<RingHash [30 instances, {ring.points} points]>"
    assert {ring.pick(f"key-{k}").id for k in range(3000)} == {f"i{k}" for k in range(30)}  # type: ignore[union-attr]


def test_ring_hash_under_the_cap_keeps_the_weights_proportions() -> None:
    """Scaled down to fit, a host of weight 10,000 still gets about twice the keys of
    one of weight 5,000."""
    weights = [10_000, 5_000] * 10
    ring = RingHash()
    ring.update(_instances(20, weights))
    assert ring.points <= RingHash.max_points
    counts = Counter(ring.pick(f"key-{k}").id for k in range(20_000))  # type: ignore[union-attr]
    heavy = sum(counts[f"i{k}"] for k in range(0, 20, 2))
    light = sum(counts[f"i{k}"] for k in range(1, 20, 2))
    assert 1.8 <= heavy / light <= 2.2


def test_ring_hash_under_the_cap_moves_only_a_removed_hosts_keys() -> None:
    """With large weights scaled to fit, removing one host moves only the keys it held."""
    hosts = _instances(30, [10_000] * 30)
    ring = RingHash()
    ring.update(hosts)
    before = {k: ring.pick(f"key-{k}") for k in range(10_000)}
    ring.update(hosts[1:])
    moved = {before[k].id for k in before if ring.pick(f"key-{k}") != before[k]}  # type: ignore[union-attr]
    assert moved == {"i0"}


def test_ring_hash_with_more_hosts_than_points_gives_each_one_point() -> None:
    """Past max_points hosts, every host keeps one point (none is left off the ring)."""

    class Small(RingHash):
        max_points = 8

    ring = Small()
    ring.update(_instances(10))
    assert ring.points == 10


def test_ring_hash_rejects_zero_replicas() -> None:
    """replicas < 1 is a ConfigError."""
    with pytest.raises(ConfigError):
        RingHash(replicas=0)


def test_zone_aware_prefers_the_local_zone() -> None:
    """With local instances available, every pick stays in the local zone."""
    balancer = ZoneAware("a")
    balancer.update(
        [
            *_instances(2, zone="a"),
            *[
                ServiceInstance(id=f"b{k}", name="svc", url=f"http://10.1.0.{k}:80", zone="b")
                for k in range(3)
            ],
        ]
    )
    assert {balancer.pick().zone for _ in range(50)} == {"a"}  # type: ignore[union-attr]


def test_zone_aware_falls_back_when_the_local_zone_is_short() -> None:
    """Below min_hosts local instances, picks span every zone."""
    balancer = ZoneAware("a", min_hosts=3)
    balancer.update(
        [
            *_instances(2, zone="a"),
            ServiceInstance(id="b0", name="svc", url="http://10.1.0.9:80", zone="b"),
        ]
    )
    assert {balancer.pick().zone for _ in range(100)} == {"a", "b"}  # type: ignore[union-attr]


def test_zone_aware_counts_calls_in_both_inner_balancers() -> None:
    """on_start/on_finish reach the inner least-request balancers."""
    balancer = ZoneAware("a", inner=LeastRequest)
    inst = _instances(1, zone="a")[0]
    balancer.update([inst])
    balancer.on_start(inst)
    assert balancer._local.in_flight("i0") == 1  # type: ignore[attr-defined]
    balancer.on_finish(inst, 0.1, True)
    assert balancer._all.in_flight("i0") == 0  # type: ignore[attr-defined]


def test_zone_aware_rejects_zero_min_hosts() -> None:
    """min_hosts < 1 is a ConfigError."""
    with pytest.raises(ConfigError):
        ZoneAware("a", min_hosts=0)


def test_make_balancer_by_name_and_unknown_name() -> None:
    """Names map to factories; an unknown name lists the known ones."""
    assert make_balancer("least_request") is LeastRequest
    assert make_balancer(RoundRobin) is RoundRobin
    with pytest.raises(ConfigError, match="round_robin"):
        make_balancer("fastest")


def test_repr_shows_the_set_size() -> None:
    """A balancer's repr says how many instances it balances."""
    rr = RoundRobin()
    rr.update(_instances(3))
    assert repr(rr) == "<RoundRobin [3 instances]>"


def test_power_of_two_balancers_follow_weights_when_idle() -> None:
    """With no load, least-request and peak EWMA draw by weight (9:1 mostly the heavy one)."""
    for balancer in (LeastRequest(), PeakEwma(clock=FakeClock())):
        balancer.update(_instances(2, [9, 1]))
        counts = Counter(balancer.pick().id for _ in range(2000))  # type: ignore[union-attr]
        assert counts["i0"] > counts["i1"] * 3, balancer


def test_single_instance_is_always_picked() -> None:
    """A set of one needs no draw: every power-of-two balancer returns it."""
    for balancer in (LeastRequest(), PeakEwma(clock=FakeClock())):
        balancer.update(_instances(1))
        assert balancer.pick().id == "i0"  # type: ignore[union-attr]


def test_maglev_spreads_slots_by_weight() -> None:
    """Table slots follow weights 1:2:3 within one slot per host."""
    maglev = Maglev(table_size=6007)
    maglev.update(_instances(3, [1, 2, 3]))
    slots = Counter(inst.id for inst in maglev._table)
    assert abs(slots["i2"] - 3 * slots["i0"]) <= 3 and abs(slots["i1"] - 2 * slots["i0"]) <= 2


def test_maglev_moves_about_one_nth_of_keys_when_an_instance_joins() -> None:
    """A 6th instance takes about 1/6 of the keys; the others keep theirs."""
    maglev = Maglev()
    maglev.update(_instances(5))
    before = {k: maglev.pick(f"key-{k}") for k in range(10_000)}
    assert maglev.pick("key-1") == before[1]
    maglev.update(_instances(6))
    moved = [k for k, inst in before.items() if maglev.pick(f"key-{k}") != inst]
    assert len(moved) / 10_000 <= 1 / 6 * 1.35


def test_maglev_without_key_is_random_and_rejects_bad_sizes() -> None:
    """No key spreads over every host; a table size that is not a prime is refused."""
    maglev = Maglev()
    maglev.update(_instances(3))
    assert {maglev.pick().id for _ in range(200)} == {"i0", "i1", "i2"}  # type: ignore[union-attr]
    with pytest.raises(ConfigError):
        Maglev(table_size=6000)


@pytest.mark.parametrize(
    ("balancer", "tracks"),
    [
        (RoundRobin(), False),
        (RandomBalancer(), False),
        (RingHash(), False),
        (Maglev(), False),
        (LeastRequest(), True),
        (PeakEwma(), True),
        (ZoneAware("a"), False),
        (ZoneAware("a", inner=LeastRequest), True),
    ],
)
def test_tracks_calls_says_whether_call_accounting_matters(balancer: Any, tracks: bool) -> None:
    """Only balancers that count calls in flight or latency ask for on_start/on_finish."""
    assert balancer.tracks_calls is tracks


def test_cluster_skips_call_accounting_of_a_balancer_that_counts_nothing() -> None:
    """A round-robin cluster never calls on_start/on_finish; a least-request one does."""
    calls: list[str] = []

    class Counting(RoundRobin):
        def on_start(self, instance: ServiceInstance) -> None:
            calls.append("start")

    quiet = Cluster("svc", Counting(), HealthTracker())
    quiet.replace(_instances(2), 0.0)
    chosen = quiet.pick(0.0)
    assert chosen is not None
    quiet.on_start(chosen)
    assert calls == [] and quiet.tracks_calls is False
    busy = Cluster("svc", LeastRequest(), HealthTracker())
    busy.replace(_instances(2), 0.0)
    busy.on_start(chosen)
    assert isinstance(busy.balancer, LeastRequest) and busy.balancer.in_flight(chosen.id) == 1


def test_balancer_without_the_flag_is_assumed_to_track_calls() -> None:
    """A third-party balancer lacking tracks_calls still gets on_start/on_finish."""

    class Plain:
        kind = "plain"

        def __init__(self) -> None:
            self.started = 0
            self.set: tuple[ServiceInstance, ...] = ()

        def update(self, instances: Sequence[ServiceInstance]) -> None:
            self.set = tuple(instances)

        def pick(
            self, key: str | None = None, exclude: Collection[str] = frozenset()
        ) -> ServiceInstance | None:
            return self.set[0] if self.set else None

        def on_start(self, instance: ServiceInstance) -> None:
            self.started += 1

        def on_finish(self, instance: ServiceInstance, latency: float, ok: bool) -> None:
            self.started -= 1

    balancer = Plain()
    cluster = Cluster("svc", balancer, HealthTracker())
    cluster.replace(_instances(1), 0.0)
    chosen = cluster.pick(0.0)
    assert chosen is not None
    cluster.on_start(chosen)
    assert balancer.started == 1
    cluster.record_call(chosen, status=200, error=None, latency=0.01, now=0.0)
    assert balancer.started == 0


@pytest.mark.parametrize("factory", [RoundRobin, RandomBalancer, LeastRequest, PeakEwma])
def test_pick_with_exclude_avoids_the_excluded_hosts(factory: type[LoadBalancer]) -> None:
    """With every host but one excluded, each pick returns that one."""
    balancer = factory()
    balancer.update(_instances(5, [1, 2, 1, 3, 1]))
    excluded = {f"i{k}" for k in range(5) if k != 3}
    assert {balancer.pick(None, excluded).id for _ in range(50)} == {"i3"}  # type: ignore[union-attr]


def test_peak_ewma_learns_nothing_from_calls_without_an_outcome() -> None:
    """A call refused by the host's breaker (or cancelled) ends at once with no outcome:
    it releases the in-flight count but is no latency sample (it made the host look the
    cheapest, so an open-breaker host kept being picked first)."""
    clock = FakeClock()
    balancer = PeakEwma(decay=1.0, clock=clock)
    cluster = Cluster("svc", balancer, HealthTracker())
    cluster.replace(_instances(1), 0.0)
    inst = cluster.pick(0.0)
    assert inst is not None
    cluster.on_start(inst)
    cluster.record_call(inst, status=200, error=None, latency=0.5, now=0.0)
    for _ in range(20):
        clock.advance(1.0)
        cluster.on_start(inst)
        cluster.record_call(inst, status=None, error=None, latency=0.0, now=clock.monotonic())
    assert balancer.latency(inst.id) == 0.5
    assert balancer.in_flight(inst.id) == 0
