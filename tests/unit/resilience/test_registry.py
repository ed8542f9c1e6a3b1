"""BreakerRegistry: one breaker per host, evicted when idle."""

from __future__ import annotations

from flext_api import BreakerConfig
from flext_api.resilience import Admit, BreakerRegistry, BreakerState, ResilienceEvent


def test_one_breaker_per_key() -> None:
    """The same key gives the same breaker; another key another one."""
    registry = BreakerRegistry()
    a = registry.get("a.example", 0.0)
    assert registry.get("a.example", 1.0) is a
    assert registry.get("b.example", 1.0) is not a
    assert a.key == "a.example"
    assert len(registry) == 2 and "a.example" in registry
    assert registry.peek("c.example") is None


def test_a_failing_host_does_not_open_another() -> None:
    """Opening one host's breaker leaves the others closed."""
    registry = BreakerRegistry(BreakerConfig(consecutive_failures=1))
    bad = registry.get("bad", 0.0)
    verdict = bad.allow(0.0)
    assert isinstance(verdict, Admit)
    bad.on_failure(0.0, 0.1, verdict)
    assert bad.state is BreakerState.OPEN
    assert registry.get("good", 0.0).state is BreakerState.CLOSED


def test_idle_breakers_are_evicted() -> None:
    """A breaker unused for idle_eviction seconds is dropped (bounded memory)."""
    registry = BreakerRegistry(BreakerConfig(idle_eviction=60.0))
    old = registry.get("old", 0.0)
    registry.get("busy", 0.0)
    registry.get("busy", 50.0)
    assert registry.evict_idle(70.0) == 1
    assert "old" not in registry and "busy" in registry
    assert registry.get("old", 70.0) is not old


def test_manual_breakers_are_never_evicted() -> None:
    """A forced-open breaker stays until reset, however long it is idle."""
    registry = BreakerRegistry(BreakerConfig(idle_eviction=60.0))
    registry.get("maintenance", 0.0).force_open()
    assert registry.evict_idle(10_000.0) == 0
    assert registry.peek("maintenance") is not None


def test_hooks_see_every_breaker() -> None:
    """Registry hooks receive the state changes of each breaker, with its key."""
    events: list[ResilienceEvent] = []
    registry = BreakerRegistry(BreakerConfig(consecutive_failures=1), hooks=[events.append])
    breaker = registry.get("api", 0.0)
    verdict = breaker.allow(0.0)
    assert isinstance(verdict, Admit)
    breaker.on_failure(0.0, 0.1, verdict)
    assert [getattr(e, "key", None) for e in events] == ["api"]


def test_iteration_and_repr() -> None:
    """Iterating yields (key, breaker); the repr counts breakers per state."""
    registry = BreakerRegistry()
    assert repr(registry) == "<BreakerRegistry [empty]>"
    registry.get("a", 0.0)
    registry.get("b", 0.0).force_open()
    assert [key for key, _ in registry] == ["a", "b"]
    assert repr(registry) == "<BreakerRegistry [1 closed, 1 forced_open]>"
