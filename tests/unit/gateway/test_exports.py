"""flext_api.gateway's public surface: sorted and complete."""

from __future__ import annotations

import types

import flext_api.gateway as gateway


def test_all_sorted_and_complete() -> None:
    """__all__ is sorted and lists exactly the package's public names."""
    public = {
        name
        for name, value in vars(gateway).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert gateway.__all__ == sorted(gateway.__all__)
    assert set(gateway.__all__) == public


def test_pinned_names() -> None:
    """The names DESIGN pins for the gateway exist."""
    assert callable(gateway.create_gateway)
    assert gateway.GatewayConfig.__name__ == "GatewayConfig"
