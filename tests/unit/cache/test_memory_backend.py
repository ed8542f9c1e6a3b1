"""MemoryBackend: LRU bounds by entries and bytes, expiry on the injected clock."""

from __future__ import annotations

import pytest

from flext_api.cache import MemoryBackend
from flext_api.testing import FakeClock


async def test_get_returns_data_and_remaining_ttl() -> None:
    """get() returns the bytes and the seconds left (None without expiry)."""
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    await backend.set("a", b"1", 10)
    await backend.set("b", b"2", None)
    clock.advance(4)
    data, ttl = await backend.get("a") or (b"", None)
    assert (data, ttl) == (b"1", 6.0)
    assert await backend.get("b") == (b"2", None)
    assert await backend.get("missing") is None


async def test_expired_entries_are_misses() -> None:
    """An entry past its ttl is gone."""
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    await backend.set("a", b"1", 1)
    clock.advance(1)
    assert await backend.get("a") is None
    assert (await backend.usage()).entries == 0


async def test_entry_bound_evicts_least_recently_used() -> None:
    """Past max_entries the least recently used entry goes."""
    backend = MemoryBackend(max_entries=2)
    await backend.set("a", b"1", None)
    await backend.set("b", b"2", None)
    await backend.get("a")
    await backend.set("c", b"3", None)
    assert await backend.get("b") is None
    assert await backend.get("a") is not None
    assert (await backend.usage()).evictions == 1


async def test_byte_bound_evicts_until_it_fits() -> None:
    """Past max_bytes old entries go; an entry larger than the bound is not kept."""
    backend = MemoryBackend(max_bytes=10)
    await backend.set("a", b"12345", None)
    await backend.set("b", b"12345", None)
    await backend.set("c", b"123", None)
    assert await backend.get("a") is None
    assert (await backend.usage()).size_bytes == 8
    await backend.set("huge", b"x" * 11, None)
    assert await backend.get("huge") is None


async def test_an_entry_larger_than_the_bound_leaves_the_others() -> None:
    """Storing an entry past max_bytes keeps nothing of it and pushes nothing out; it
    replaces (removes) the key's old value."""
    backend = MemoryBackend(max_bytes=10)
    await backend.set("a", b"1234", None)
    await backend.set("b", b"1234", None)
    await backend.set("b", b"x" * 11, None)
    assert await backend.get("a") == (b"1234", None)
    assert await backend.get("b") is None
    usage = await backend.usage()
    assert (usage.entries, usage.size_bytes) == (1, 4)


async def test_many_delete_clear() -> None:
    """get_many/set_many/delete/clear behave like their single forms."""
    backend = MemoryBackend()
    await backend.set_many({"a": b"1", "b": b"2"}, None)
    assert await backend.get_many(["a", "b", "c"]) == {"a": (b"1", None), "b": (b"2", None)}
    assert await backend.delete("a") is True
    assert await backend.delete("a") is False
    await backend.clear()
    assert (await backend.usage()).entries == 0
    await backend.close()
    assert repr(backend) == "<MemoryBackend entries=0/10000 bytes=0>"


def test_bad_bounds() -> None:
    """Bounds below 1 are ValueErrors."""
    with pytest.raises(ValueError, match="max_entries"):
        MemoryBackend(max_entries=0)
    with pytest.raises(ValueError, match="max_bytes"):
        MemoryBackend(max_bytes=0)


@pytest.mark.parametrize("bound", [float("nan"), 2.5, True, "10"])
def test_bounds_must_be_ints(bound: object) -> None:
    """A NaN, float, bool or str bound is a TypeError (a NaN bound never evicted)."""
    with pytest.raises(TypeError, match="max_entries must be an int"):
        MemoryBackend(max_entries=bound)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_bytes must be an int"):
        MemoryBackend(max_bytes=bound)  # type: ignore[arg-type]
