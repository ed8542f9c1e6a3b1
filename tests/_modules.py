"""Forget an imported package, for tests that write one under ``tmp_path`` and import it."""

from __future__ import annotations

import importlib
import sys

import pytest


def forget_package(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Drop ``package`` and its modules from ``sys.modules`` (put back after the test):
    another test's package of the same name, already imported, would be found instead."""
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        monkeypatch.delitem(sys.modules, name)
    importlib.invalidate_caches()
