"""Duration arguments: seconds as ``float``/``int`` or a ``timedelta``, checked once."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TypeAlias

__all__ = ["Duration", "to_seconds"]

Duration: TypeAlias = "float | int | timedelta"


def to_seconds(value: Duration, name: str, *, allow_zero: bool = True) -> float:
    """``value`` in seconds; ``ValueError`` for a negative, NaN (or, if asked, zero) duration.

    ``math.inf`` is accepted and means "forever".
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{name} must be seconds (float) or a timedelta, got {type(value).__name__}"
        )
    else:
        seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound} seconds, got {value!r}")
    return seconds
