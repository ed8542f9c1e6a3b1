"""The package version, in the core so that any layer may report it (user agents, spans)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
