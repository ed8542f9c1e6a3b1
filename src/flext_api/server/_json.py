"""orjson that never fails on text a client sent: lone surrogates are escaped, not fatal.

JSON lets a string hold ``"\\ud800"``; Python decodes it to a lone surrogate, which UTF-8
cannot encode, so ``orjson.dumps`` refuses any document that quotes it. Problem details
and log records quote what clients send (an ``HTTPException`` naming an unknown SKU, a
traceback of a ``ValueError``), so one such body would turn the error path itself into a
crash: no problem document, no log record. :func:`dumps` tries orjson as is (the common
case pays nothing more) and, only when that fails, retries with every string scrubbed:
a lone surrogate becomes the visible text ``\\ud800`` (``backslashreplace``), as
:func:`~flext_api._redact.escape_control` writes other unprintable characters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["dumps", "scrub"]


def _text(value: str) -> str:
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def scrub(value: Any) -> Any:
    """``value`` with every string (dict keys included) made UTF-8 encodable."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {scrub(key): scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    return value


def dumps(
    value: Any, *, default: Callable[[Any], Any] | None = None, option: int | None = None
) -> bytes:
    """``orjson.dumps(value, default=default, option=option)``, lone surrogates escaped.

    Other encoding errors (an unsupported type without ``default``) are raised as orjson
    raises them.
    """
    try:
        return orjson.dumps(value, default=default, option=option)
    except orjson.JSONEncodeError:
        if default is None:
            return orjson.dumps(scrub(value), option=option)
        convert = default

        def scrubbed_default(item: Any) -> Any:
            return scrub(convert(item))

        return orjson.dumps(scrub(value), default=scrubbed_default, option=option)
