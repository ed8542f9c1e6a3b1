"""FrequencySketch and the eviction policies (CLOCK "lru" and W-TinyLFU "tinylfu")."""

from __future__ import annotations

import pytest

from flext_api.cache import ClockPolicy, TinyLfuPolicy
from flext_api.cache._policy import PolicyNode, make_policy
from flext_api.cache._sketch import FrequencySketch


def test_sketch_counts_and_saturates_at_fifteen() -> None:
    """Counts grow with increments and stop at 15."""
    sketch = FrequencySketch(1000)
    for _ in range(3):
        sketch.increment("a")
    assert sketch.frequency("a") == 3
    sketch.increment("a", 100)
    assert sketch.frequency("a") == 15
    assert sketch.frequency("never") == 0


def test_sketch_ignores_non_positive_counts() -> None:
    """increment by 0 records nothing."""
    sketch = FrequencySketch(16)
    sketch.increment("a", 0)
    assert sketch.samples == 0


def test_sketch_halves_counts_after_its_sample() -> None:
    """After 10 x capacity increments every counter is halved (popularity ages)."""
    sketch = FrequencySketch(16)  # int keys: hashes are the same in every run
    sketch.increment(1, 8)
    sketch.increment(2, 160 - 8)
    assert sketch.frequency(1) == 4
    assert sketch.frequency(2) == 7
    assert sketch.samples == 80


def test_sketch_width_is_a_power_of_two() -> None:
    """Width is the next power of two at or above capacity, at least 16."""
    assert FrequencySketch(1).width == 16
    assert FrequencySketch(1000).width == 1024
    sketch = FrequencySketch(20)
    sketch.increment("a")
    sketch.clear()
    assert sketch.frequency("a") == 0
    assert repr(sketch) == "<FrequencySketch width=32 samples=0/200>"


def test_clock_gives_touched_nodes_a_second_chance() -> None:
    """CLOCK evicts the oldest untouched node; a touched one is moved to the back."""
    policy = ClockPolicy(2)
    a, b, c = PolicyNode("a"), PolicyNode("b"), PolicyNode("c")
    policy.add(a)
    policy.add(b)
    a.refs += 1
    assert policy.add(c) == [b]
    assert a.refs == 0
    policy.remove(a)
    assert len(policy) == 1
    policy.clear()
    assert len(policy) == 0
    assert repr(policy) == "<ClockPolicy 0/2>"


def test_tinylfu_rejects_a_cold_candidate() -> None:
    """A one-off key leaving the window loses against a more frequent probation victim."""
    policy = TinyLfuPolicy(100)  # window 1, probation 19, protected 80
    for i in range(99):  # int keys hash the same in every run: no flaky collisions
        policy.add(PolicyNode(i))
        policy.sketch.increment(i, 5)
    # A key whose four counters no resident key shares (collisions would inflate it).
    cold = PolicyNode(next(k for k in range(1000, 2000) if policy.sketch.frequency(k) == 0))
    policy.add(cold)
    evicted = policy.add(PolicyNode(-1))
    assert evicted == [cold]
    assert len(policy) == 100


def test_tinylfu_admits_a_hot_candidate() -> None:
    """A candidate seen more often than the victim replaces it."""
    policy = TinyLfuPolicy(100)
    for i in range(99):
        policy.add(PolicyNode(i))
    hot = PolicyNode(1000)
    policy.sketch.increment(1000, 10)
    policy.add(hot)
    evicted = policy.add(PolicyNode(1001))
    assert len(evicted) == 1
    assert evicted[0] is not hot


def test_tinylfu_promotes_hit_probation_nodes_to_protected() -> None:
    """A probation node hit since insertion is promoted instead of evicted."""
    policy = TinyLfuPolicy(10)  # window 1, main 9, protected 7
    nodes = [PolicyNode(i) for i in range(10)]
    for node in nodes:
        policy.add(node)
    for node in nodes[:9]:
        node.refs += 1
    policy.add(PolicyNode(100))
    window, probation, protected = policy.segment_sizes()
    assert window == 1
    assert protected == 7
    assert window + probation + protected == len(policy) <= 10


def test_tinylfu_capacity_one_keeps_the_newest() -> None:
    """With capacity 1 there is no main queue: the previous key leaves."""
    policy = TinyLfuPolicy(1)
    a, b = PolicyNode("a"), PolicyNode("b")
    policy.add(a)
    assert policy.add(b) == [a]


def test_tinylfu_remove_and_clear() -> None:
    """remove() finds a node in any segment; clear() forgets nodes and counts."""
    policy = TinyLfuPolicy(10)
    nodes = [PolicyNode(i) for i in range(10)]
    for node in nodes:
        policy.add(node)
    for node in nodes:
        policy.remove(node)
    assert len(policy) == 0
    policy.add(PolicyNode("a"))
    policy.clear()
    assert policy.sketch.frequency("a") == 0
    assert repr(policy) == "<TinyLfuPolicy 0/10 window=0 probation=0 protected=0>"


def test_tinylfu_demotes_from_protected_when_probation_is_empty() -> None:
    """When every main node is protected, the protected head is demoted to be the victim."""
    policy = TinyLfuPolicy(3)  # window 1, main 2, protected 1
    a, b, c, d = (PolicyNode(k) for k in "abcd")
    for node in (a, b, c):
        policy.add(node)
    a.refs += 1
    b.refs += 1
    evicted = policy.add(d)
    assert len(evicted) == 1
    assert len(policy) == 3


@pytest.mark.parametrize("bad", [0, -1])
def test_policies_need_a_positive_capacity(bad: int) -> None:
    """Capacity below 1 is a ValueError for both policies and the sketch."""
    for cls in (ClockPolicy, TinyLfuPolicy, FrequencySketch):
        with pytest.raises(ValueError, match="capacity"):
            cls(bad)


def test_make_policy_by_name() -> None:
    """make_policy builds the named policy."""
    assert isinstance(make_policy("lru", 5), ClockPolicy)
    assert isinstance(make_policy("tinylfu", 5), TinyLfuPolicy)


def test_tinylfu_protected_nodes_get_a_second_chance() -> None:
    """A protected node hit since promotion is kept when protected overflows; another is demoted."""
    policy = TinyLfuPolicy(10)  # window 1, main 9, protected 7
    nodes = [PolicyNode(i) for i in range(10)]
    for node in nodes:
        policy.add(node)
    for node in nodes[:9]:
        node.refs += 1
    policy.add(PolicyNode(100))  # promotes hit probation nodes; protected fills up
    for node in nodes[:9]:
        node.refs += 1  # hit again while protected
    for key in (101, 102):
        policy.add(PolicyNode(key))
    _, _, protected = policy.segment_sizes()
    assert protected == 7
    assert len(policy) == 10
    for node in nodes:
        policy.remove(node)
    assert policy.segment_sizes()[2] == 0
