"""The public surface of flext_api.server: __all__ sorted and complete."""

from __future__ import annotations

import importlib
import types

import pytest

MODULES = ["flext_api.server", "flext_api.server.middleware"]


@pytest.mark.parametrize("module_name", MODULES)
def test_all_is_sorted_and_complete(module_name: str) -> None:
    """__all__ lists every public re-export exactly once, in plain sorted order."""
    module = importlib.import_module(module_name)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert module.__all__ == sorted(set(module.__all__))
    assert set(module.__all__) == public


def test_create_fastapi_app_pinned_name() -> None:
    """The pinned factory name is importable from flext_api.server."""
    from flext_api.server import create_fastapi_app

    assert callable(create_fastapi_app)
