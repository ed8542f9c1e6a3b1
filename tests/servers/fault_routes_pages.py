"""Fault-server routes for pages tests (registered on import by fault_routes.py)."""

from __future__ import annotations
