"""What the HTTP cache keeps per URL: the stored responses (one per ``Vary`` variant), as bytes.

A :class:`StoredResponse` holds what RFC 9111 needs later: status, headers, body, the
request and response times (for the age calculation, §4.2.3) and the request's values
of the fields named by ``Vary`` (§4.1). All variants of one URL live in one record, so
a lookup is one backend read. Record layout::

    meta_len: u32 | orjson([{status, reason, version, headers, url, ...}, ...]) | bodies

Damaged records decode to :class:`~flext_api.cache._codec.CorruptEntryError`; the
plugin logs them and treats them as a miss.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .._models import Headers
from ._codec import CorruptEntryError

__all__ = ["StoredResponse", "decode_variants", "encode_variants"]

_LEN = struct.Struct(">I")


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


def _variant(item: Any, body: bytes) -> StoredResponse:
    return StoredResponse(
        status=int(item["s"]),
        headers=tuple((str(k), str(v)) for k, v in item["h"]),
        body=body,
        url=str(item["u"]),
        request_time=float(item["q"]),
        response_time=float(item["p"]),
        vary=tuple((str(k), None if v is None else str(v)) for k, v in item["y"]),
        reason=str(item["r"]),
        http_version=str(item["v"]),
    )


def decode_variants(data: bytes) -> list[StoredResponse]:
    """The variants in ``data``; :class:`CorruptEntryError` when it is not a valid record."""
    try:
        (meta_len,) = _LEN.unpack_from(data)
        meta = orjson.loads(data[_LEN.size : _LEN.size + meta_len])
        offset = _LEN.size + meta_len
        variants: list[StoredResponse] = []
        for item in meta:
            size = int(item["n"])
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
