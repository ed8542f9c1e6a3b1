"""How :class:`~flext_api.cache.FlextApiCache` turns values into bytes and back.

A value is ``bytes`` (stored as is) or anything orjson can serialize (dicts, lists, str,
numbers, bools, None, dataclasses, datetimes...). One tag byte in front says which, so
``b"[1]"`` and ``[1]`` come back as what they were. Decoding returns a new object every
time: a caller mutating what it got never changes the cache, on any backend.

A value that cannot be serialized is a ``TypeError`` at ``set`` - a programmer error,
like passing the wrong type to ``json.dumps`` - naming the key and the type. So is a
NaN or infinite float, which orjson would write as ``null`` (read back as ``None``).
"""

from __future__ import annotations

from typing import Any

import orjson

from .._numbers import has_non_finite

__all__ = ["CorruptEntryError", "decode_value", "encode_value"]

_RAW = b"b"
_JSON = b"j"


class CorruptEntryError(ValueError):
    """Stored bytes that do not decode: the entry is treated as a miss and removed."""


def encode_value(key: str, value: Any) -> bytes:
    """``value`` as tagged bytes; ``TypeError`` when it is neither bytes nor JSON-serializable."""
    if isinstance(value, bytes | bytearray | memoryview):
        return _RAW + bytes(value)
    try:
        payload = orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise TypeError(
            f"cannot cache the value for key {key!r}: {type(value).__name__} is neither bytes "
            f"nor JSON-serializable ({exc})"
        ) from exc
    # orjson writes NaN and +-Infinity as null, so they would come back as None: refuse
    # them instead. Only a payload with a null can hold one, so most values skip the walk.
    if b"null" in payload and has_non_finite(value):
        raise TypeError(
            f"cannot cache the value for key {key!r}: it holds a NaN or infinite float, "
            "which JSON cannot represent (it would come back as None)"
        )
    return _JSON + payload


def decode_value(data: bytes) -> Any:
    """The value ``data`` holds; :class:`CorruptEntryError` when it is not ours or is damaged."""
    tag, payload = data[:1], data[1:]
    if tag == _RAW:
        return payload
    if tag == _JSON:
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise CorruptEntryError(f"stored JSON does not parse: {exc}") from exc
    raise CorruptEntryError(f"unknown value tag {tag!r}")
