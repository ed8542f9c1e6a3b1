"""IdleMap: per-key state that is dropped after being idle."""

from __future__ import annotations

import pytest

from flext_api.resilience._keyed import IdleMap


def test_creates_once_per_key() -> None:
    """A key's value is built on first use and reused after."""
    built: list[str] = []

    def factory(key: str) -> list[str]:
        built.append(key)
        return [key]

    store: IdleMap[list[str]] = IdleMap(factory, idle=10.0)
    first = store.get("a", 0.0)
    assert store.get("a", 1.0) is first
    assert built == ["a"]
    assert "a" in store and len(store) == 1
    assert store.peek("b") is None and "b" not in store


def test_idle_entries_are_evicted_on_access() -> None:
    """An entry unused for ``idle`` seconds is gone at the next sweep."""
    store: IdleMap[object] = IdleMap(lambda _k: object(), idle=10.0)
    old = store.get("old", 0.0)
    store.get("fresh", 8.0)
    store.get("fresh", 12.0)  # sweeps: "old" idle 12 s
    assert "old" not in store and "fresh" in store
    assert store.get("old", 12.5) is not old


def test_busy_entries_survive_eviction() -> None:
    """can_evict=False keeps an idle entry."""
    store: IdleMap[dict[str, bool]] = IdleMap(
        lambda _k: {"busy": True}, idle=1.0, can_evict=lambda v: not v["busy"]
    )
    store.get("k", 0.0)
    assert store.evict_idle(100.0) == 0
    assert "k" in store


def test_items_values_and_repr() -> None:
    """items() and values() list the entries in creation order."""
    store: IdleMap[int] = IdleMap(len, idle=5.0)
    store.get("a", 0.0)
    store.get("bb", 0.0)
    assert list(store.items()) == [("a", 1), ("bb", 2)]
    assert list(store.values()) == [1, 2]
    assert repr(store) == "<IdleMap 2 keys, idle=5s>"


def test_idle_must_be_positive() -> None:
    """idle <= 0 is a ValueError."""
    with pytest.raises(ValueError, match="idle"):
        IdleMap(len, idle=0)
