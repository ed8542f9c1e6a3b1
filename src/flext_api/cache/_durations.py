"""Cache arguments: durations (seconds or ``timedelta``), counts (``int``), sets of names (tags)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta
from typing import TypeAlias

from .._numbers import is_int, is_real

__all__ = ["Duration", "to_count", "to_names", "to_seconds"]

Duration: TypeAlias = "float | int | timedelta"


def to_seconds(value: Duration, name: str, *, allow_zero: bool = True) -> float:
    """``value`` in seconds; ``ValueError`` for a negative, NaN (or, if asked, zero) duration.

    ``math.inf`` is accepted and means "forever".
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif not is_real(value):
        raise TypeError(
            f"{name} must be seconds (float) or a timedelta, got {type(value).__name__}"
        )
    else:
        seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound} seconds, got {value!r}")
    return seconds


def to_count(value: object, name: str) -> int:
    """``value`` as a count >= 1 (entries, bytes, variants); ``TypeError``/``ValueError`` if not.

    Only a real ``int`` is a count: ``2.5``, ``nan``, ``True`` or ``"10"`` would otherwise
    slip through a ``< 1`` check and leave a bound that never holds (``len(x) > nan`` is
    always False) or fails later far from its cause.
    """
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def to_names(values: Iterable[str], name: str) -> frozenset[str]:
    """``values`` (tags, header names) as a set of str; ``TypeError`` for one str or a non-str.

    ``tags="users"`` would otherwise be taken letter by letter (``{"u", "s", "e", "r"}``)
    and nothing would ever be invalidated by ``invalidate_tag("users")``. As
    ``FlextApiCache.get_many("abc")`` does, one str is refused rather than guessed at.
    """
    if isinstance(values, str | bytes):
        raise TypeError(
            f"{name} must be an iterable of str, not one {type(values).__name__}: "
            f"write {name}=[{values!r}]"
        )
    names = frozenset(values)
    for value in names:
        if not isinstance(value, str):
            raise TypeError(f"{name} must hold str, got {type(value).__name__} {value!r:.80}")
    return names
