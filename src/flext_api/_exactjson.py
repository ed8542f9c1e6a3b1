"""JSON parsing that never changes a number: orjson, unless an integer would not fit.

orjson parses integers within 64 bits exactly and turns a bigger one into a float
without a word: ``123456789012345678901234567890`` becomes ``1.2345678901234568e+29``
(a ledger amount, a snowflake id past 2**64). Such a number has at least 19 digits in a
row, so a document holding a run of 19 digits is parsed by the standard library, whose
``int`` has no bound; any other goes to orjson. The errors are orjson's
(:class:`orjson.JSONDecodeError`, a :class:`json.JSONDecodeError`) either way, and
``NaN``/``Infinity``, which orjson refuses, are refused on both paths. :func:`dumps`
writes such integers back the same way.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

__all__ = ["dumps", "loads"]

_LONG_RUN_BYTES = re.compile(rb"\d{19}")
_LONG_RUN_TEXT = re.compile(r"\d{19}")


def dumps(value: Any) -> bytes:
    """``value`` as compact JSON: orjson, or the standard library for an integer past 64
    bits (orjson refuses it with a TypeError), so what :func:`loads` read writes back."""
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        if "64-bit" not in str(exc):
            raise
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """The JSON document ``data`` (see module docstring)."""
    if isinstance(data, str):
        if _LONG_RUN_TEXT.search(data) is None:
            return orjson.loads(data)
        text = data
    else:
        raw = bytes(data)
        if _LONG_RUN_BYTES.search(raw) is None:
            return orjson.loads(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise orjson.JSONDecodeError(f"not UTF-8: {exc}", "", 0) from exc
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise orjson.JSONDecodeError(exc.msg, exc.doc, exc.pos) from exc
    except (ValueError, RecursionError) as exc:
        raise orjson.JSONDecodeError(str(exc), text, 0) from exc
