"""Module-level ``__getattr__`` for names that need an optional extra.

A package lists ``name -> (module, extra)``; the name is imported on first access and
cached in the package's namespace. When the import fails for want of an extra, the
ImportError says which extra to install, so ``import flext_api`` never needs one.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, names: Mapping[str, tuple[str, str | None]]) -> Callable[[str], Any]:
    """A ``__getattr__`` for ``package`` resolving ``names`` lazily.

    ``names`` maps an attribute to ``(module, extra)``; ``module`` may be relative to
    ``package`` (``"._metrics"``); ``extra`` is the pip extra that provides its
    dependencies, or None.
    """

    def __getattr__(name: str) -> Any:
        try:
            module_name, extra = names[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        try:
            module = importlib.import_module(module_name, package)
        except ImportError as exc:
            if extra is None:
                raise
            raise ImportError(
                f"{package}.{name} needs the '{extra}' extra: "
                f"pip install 'flext-api[{extra}]' ({exc})"
            ) from exc
        value = getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
