"""What the HTTP cache keeps per URL: the stored responses (one per ``Vary`` variant), as bytes.

A :class:`StoredResponse` holds what RFC 9111 needs later: status, headers, body, the
request and response times (for the age calculation, §4.2.3) and the request's values
of the fields named by ``Vary`` (§4.1). All variants of one URL live in one record, so
a lookup is one backend read. Record layout::

    meta_len: u32 | orjson([{status, reason, version, headers, url, ...}, ...]) | bodies

Damaged records decode to :class:`~flext_api.cache._codec.CorruptEntryError`; the
plugin logs them and treats them as a miss.

A private cache keeps one record per principal (``Authorization`` value) of a URL, and
an unsafe request must invalidate them all (RFC 9111 §4.4) without listing them - no
backend can enumerate keys cheaply, and a shared index would lose entries to
concurrent writers or to eviction. So each such record is *sealed* with the token held
by a small guard record of its method and URL (a :class:`Slot`'s ``guard``): a record
counts only while its token is the guard's. Invalidating deletes the guard, which voids
every principal's record at once; a lost guard (expired, evicted, damaged) voids them
too, so a failure makes misses, never stale answers.
"""

from __future__ import annotations

import math
import re
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .._models import Headers
from ._codec import CorruptEntryError

__all__ = [
    "GUARD_TTL",
    "Slot",
    "StoredResponse",
    "decode_variants",
    "encode_variants",
    "new_token",
    "read_token",
    "seal",
    "unseal",
]

_LEN = struct.Struct(">I")

#: Seconds a guard record lives. It is written once, before the origin request whose
#: answer it will guard, and never extended (rewriting it could undo an invalidation
#: made in between): a record that outlives its guard becomes a miss, not a stale hit.
GUARD_TTL = 7 * 86_400.0

_TOKEN_HEX = re.compile(rb"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class Slot:
    """Where the stored responses of one request live.

    ``key`` holds the record. ``guard`` is the key of its guard record (None: the record
    is not sealed - anonymous requests and shared caches); ``token`` the guard's value
    when it was read or written for this request (None: there was none).
    """

    key: str
    guard: str | None = None
    token: str | None = None


def new_token() -> str:
    """A fresh guard value: 32 random hex digits (never repeats, so never revives a record)."""
    return secrets.token_hex(16)


def read_token(value: object) -> str | None:
    """The guard value in ``value`` (what the cache returned), or None when it is not one."""
    if isinstance(value, bytes) and _TOKEN_HEX.fullmatch(value):
        return value.decode("ascii")
    return None


def seal(token: str, record: bytes) -> bytes:
    """``record`` marked as valid while the guard holds ``token``."""
    return token.encode("ascii") + record


def unseal(token: str | None, data: bytes) -> bytes | None:
    """The record in ``data`` if it was sealed with ``token``, else None (it is void)."""
    if token is None:
        return None
    mark = token.encode("ascii")
    return data[len(mark) :] if data.startswith(mark) else None


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One stored response and the facts its reuse depends on (times are epoch seconds)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    url: str
    request_time: float
    response_time: float
    vary: tuple[tuple[str, str | None], ...] = ()
    reason: str = ""
    http_version: str = "HTTP/1.1"

    def header_map(self) -> Headers:
        """The stored headers as a case-insensitive :class:`~flext_api.Headers`."""
        return Headers(self.headers)


def encode_variants(variants: Sequence[StoredResponse]) -> bytes:
    """Serialize the variants of one URL."""
    meta = [
        {
            "s": v.status,
            "h": v.headers,
            "u": v.url,
            "q": v.request_time,
            "p": v.response_time,
            "y": v.vary,
            "r": v.reason,
            "v": v.http_version,
            "n": len(v.body),
        }
        for v in variants
    ]
    blob = orjson.dumps(meta)
    return _LEN.pack(len(blob)) + blob + b"".join(v.body for v in variants)


# What a field name and a field value may hold (RFC 9110 §5.1, §5.5): anything else in
# a record did not come from make_stored, and served back it would be a broken (or, for
# CR/LF, a spliced) header.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[^\r\n\x00]*")


def _text(value: object, what: str) -> str:
    if type(value) is not str:
        raise CorruptEntryError(f"{what} is {type(value).__name__}, not str")
    return value


def _time(value: object, what: str) -> float:
    # float("nan") or float("inf") from a damaged record would make the response fresh
    # for ever (every age comparison with NaN is False).
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise CorruptEntryError(f"{what} is {value!r:.40}, not a finite number")
    return float(value)


def _pairs(value: object, what: str) -> list[tuple[object, object]]:
    if type(value) is not list or not all(type(p) is list and len(p) == 2 for p in value):
        raise CorruptEntryError(f"{what} is not a list of pairs")
    return [(k, v) for k, v in value]


def _field(name: object, value: object) -> tuple[str, str]:
    name, value = _text(name, "a header name"), _text(value, "a header value")
    if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
        raise CorruptEntryError(f"invalid header field {name!r:.40}")
    return name, value


def _variant(item: Any, body: bytes) -> StoredResponse:
    status = item["s"]
    if type(status) is not int or not 100 <= status <= 999:
        raise CorruptEntryError(f"status {status!r:.40} is not a three-digit int")
    return StoredResponse(
        status=status,
        headers=tuple(_field(k, v) for k, v in _pairs(item["h"], "headers")),
        body=body,
        url=_text(item["u"], "url"),
        request_time=_time(item["q"], "request time"),
        response_time=_time(item["p"], "response time"),
        vary=tuple(
            (_text(k, "a vary name"), None if v is None else _text(v, "a vary value"))
            for k, v in _pairs(item["y"], "vary")
        ),
        reason=_text(item["r"], "reason"),
        http_version=_text(item["v"], "http version"),
    )


def decode_variants(data: bytes) -> list[StoredResponse]:
    """The variants in ``data``; :class:`CorruptEntryError` when it is not a valid record."""
    try:
        (meta_len,) = _LEN.unpack_from(data)
        meta = orjson.loads(data[_LEN.size : _LEN.size + meta_len])
        offset = _LEN.size + meta_len
        variants: list[StoredResponse] = []
        for item in meta:
            size = item["n"]
            if type(size) is not int or size < 0:
                raise CorruptEntryError(f"body length {size!r:.40} is not an int >= 0")
            body = data[offset : offset + size]
            if len(body) != size:
                raise CorruptEntryError("record shorter than its bodies (truncated?)")
            variants.append(_variant(item, body))
            offset += size
    except CorruptEntryError:
        raise
    except (struct.error, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CorruptEntryError(f"not a stored HTTP response record: {exc!r}") from exc
    if offset != len(data):
        raise CorruptEntryError("record longer than its bodies")
    return variants
