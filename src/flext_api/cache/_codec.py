"""How :class:`~flext_api.cache.FlextApiCache` turns values into bytes and back.

A value is ``bytes`` (stored as is) or plain JSON data: dicts with str keys, lists,
tuples, str, int, float, bool and None, exactly those types. One tag byte in front says
which, so ``b"[1]"`` and ``[1]`` come back as what they were. Decoding returns a new
object every time: a caller mutating what it got never changes the cache, on any backend.

Anything else is a ``TypeError`` at ``set`` - a programmer error, like passing the
wrong type to ``json.dumps`` - naming the key and the type. That includes what orjson
could write but JSON cannot bring back: a datetime, UUID, Enum member, dataclass or a
subclass of str/int/dict/list would be read back as a plain str, number or dict, so one
key would answer with one type in the process that stored it and another everywhere
else. So is a NaN or infinite float, which orjson would write as ``null`` (read back as
``None``). Tuples are the one lossy case allowed: they come back as lists.
"""

from __future__ import annotations

import marshal
from typing import Any

import orjson

from .._numbers import has_non_finite

__all__ = ["CorruptEntryError", "decode_value", "encode_value"]

_RAW = b"b"
_JSON = b"j"

# Without these, orjson writes datetimes, dataclasses and str/int/dict/list subclasses
# itself; with them (and no ``default=``) it raises TypeError, at no extra cost.
_PLAIN_ONLY = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_SCALARS = (str, int, float, bool, type(None))
_JSON_TYPES = frozenset({dict, list, tuple, *_SCALARS})


class CorruptEntryError(ValueError):
    """Stored bytes that do not decode: the entry is treated as a miss and removed."""


def _not_json(key: str, what: str, reason: str) -> TypeError:
    return TypeError(
        f"cannot cache the value for key {key!r}: {what} is neither bytes nor JSON-serializable "
        f"({reason}); store bytes or plain JSON data (dict with str keys, list, tuple, str, "
        "int, float, bool, None), e.g. str(uuid), dt.isoformat(), member.value, "
        "dataclasses.asdict(obj)"
    )


def _foreign(value: Any) -> Any:
    """The first object in ``value`` (keys included) whose exact type JSON does not have."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.keys())
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind not in _JSON_TYPES:
            return item
    return None  # pragma: no cover - only called once marshal found one


def encode_value(key: str, value: Any) -> bytes:
    """``value`` as tagged bytes; ``TypeError`` when it is neither bytes nor plain JSON data."""
    if isinstance(value, bytes | bytearray | memoryview):
        return _RAW + bytes(value)
    try:
        payload = orjson.dumps(value, option=_PLAIN_ONLY)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise _not_json(key, type(value).__name__, str(exc)) from exc
    if type(value) not in _SCALARS:
        # orjson still writes UUIDs and Enum members natively (no option turns that off).
        # marshal accepts only exact builtin types, so it finds them in one pass in C,
        # several times faster than a Python walk; whatever else it accepts (bytes,
        # sets, complex) orjson has already refused.
        try:
            marshal.dumps(value)
        except ValueError as exc:  # "unmarshallable object": name the culprit
            found = _foreign(value)
            culprit = type(found).__qualname__
            what = culprit if found is value else f"{type(value).__name__} holding a {culprit}"
            reason = f"JSON has no {culprit}: another process would read back a plain value"
            raise _not_json(key, what, reason) from exc
    # orjson writes NaN and +-Infinity as null, so they would come back as None: refuse
    # them instead. Only a payload with a null can hold one, so most values skip the walk.
    if payload.find(b"null") >= 0 and has_non_finite(value):
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
