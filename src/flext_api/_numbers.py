"""Number checks for arguments and settings: ``bool`` is an ``int`` to Python, not to us.

``isinstance(True, int)`` holds, so ``count=True`` or ``timeout=False`` would pass a
plain ``isinstance`` check and a ``< 1`` comparison; and ``NaN`` fails every comparison,
so it slips through a ``< 0`` check. Every package checks its arguments with these.

JSON has no NaN or infinity, and orjson writes them as ``null``: a value the caller
sent would arrive as nothing. :func:`finite_json` is ``orjson.dumps`` refusing them,
and encoding an integer past 64 bits (which orjson refuses; JSON and Python have no
such limit) with the standard library instead.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, TypeGuard

import orjson

__all__ = ["finite_json", "has_non_finite", "is_int", "is_real"]


def is_int(value: object) -> TypeGuard[int]:
    """True for an ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: object) -> TypeGuard[int | float]:
    """True for an ``int`` or ``float`` that is not a ``bool`` (NaN and infinities
    included: compare it, ``not value > 0`` refuses NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def has_non_finite(value: Any) -> bool:
    """True when a float in ``value`` (through its dicts, lists, tuples and dataclasses,
    which orjson encodes) is NaN or infinite."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
    return False


def finite_json(value: Any) -> bytes:
    """``orjson.dumps(value)``; raises TypeError for what orjson cannot encode and
    ValueError for NaN or an infinity (which orjson would write as ``null``)."""
    try:
        body = orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        if "64-bit" not in str(exc):
            raise
        body = _wide_json(value, exc)
    # Only a body with a null can hold one: the walk is skipped for every other body.
    if body.find(b"null") >= 0 and has_non_finite(value):  # find(): see gateway._path
        raise _non_finite()
    return body


def _non_finite() -> ValueError:
    return ValueError(
        "NaN or an infinity is not a JSON number (it would be sent as null): "
        "use None or a finite number"
    )


def _wide_json(value: Any, refused: orjson.JSONEncodeError) -> bytes:
    """``value``, which holds an integer past 64 bits, encoded by the standard library
    as compactly as orjson would; ``refused`` (orjson's error) when it holds something
    only orjson encodes too (a datetime, a dataclass...)."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:  # allow_nan=False: NaN or an infinity
        raise _non_finite() from None
    except (TypeError, RecursionError):
        raise refused from None
    return text.encode()
