"""flext_api.cache's public surface: __all__ is sorted and lists exactly the re-exports."""

from __future__ import annotations

import types

import flext_api.cache as cache_pkg


def test_all_is_sorted_and_unique() -> None:
    """__all__ is in sorted order without duplicates."""
    assert cache_pkg.__all__ == sorted(set(cache_pkg.__all__))


def test_all_lists_every_public_name() -> None:
    """Every public, non-module name in the package is in __all__, and each resolves."""
    public = {
        name
        for name, value in vars(cache_pkg).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public == set(cache_pkg.__all__)
    for name in cache_pkg.__all__:
        assert getattr(cache_pkg, name) is not None


def test_pinned_names_are_exported() -> None:
    """The names DESIGN.md pins for this layer are importable from flext_api.cache."""
    for name in ("AsyncSmartCache", "CachedError", "FlextApiCache", "CachePlugin"):
        assert name in cache_pkg.__all__
