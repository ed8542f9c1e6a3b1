"""Number checks for arguments and settings: ``bool`` is an ``int`` to Python, not to us.

``isinstance(True, int)`` holds, so ``count=True`` or ``timeout=False`` would pass a
plain ``isinstance`` check and a ``< 1`` comparison; and ``NaN`` fails every comparison,
so it slips through a ``< 0`` check. Every package checks its arguments with these.
"""

from __future__ import annotations

from typing import TypeGuard

__all__ = ["is_int", "is_real"]


def is_int(value: object) -> TypeGuard[int]:
    """True for an ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: object) -> TypeGuard[int | float]:
    """True for an ``int`` or ``float`` that is not a ``bool`` (NaN and infinities
    included: compare it, ``not value > 0`` refuses NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
