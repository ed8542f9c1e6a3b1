"""Stored-response records: round trip and damage detection."""

from __future__ import annotations

import struct

import orjson
import pytest

from flext_api.cache._codec import CorruptEntryError
from flext_api.cache._http_store import StoredResponse, decode_variants, encode_variants

A = StoredResponse(
    status=200,
    headers=(("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")),
    body=b"first body",
    url="https://x/a",
    request_time=1.5,
    response_time=2.5,
    vary=(("accept", "text/plain"), ("accept-language", None)),
    reason="OK",
    http_version="HTTP/2",
)
B = StoredResponse(404, (), b"", "https://x/a", 3.0, 4.0)


def test_round_trip_keeps_every_field() -> None:
    """Encoding then decoding gives equal records, repeated headers and empty bodies included."""
    assert decode_variants(encode_variants([A, B])) == [A, B]
    assert A.header_map().get_list("set-cookie") == ["a=1", "b=2"]


def test_a_record_written_with_the_old_failed_flag_still_decodes() -> None:
    """Records stored before 404s were judged per request carry an "f" field; it is ignored."""
    meta = [
        {"s": 404, "h": [], "u": "https://x/a", "q": 3.0, "p": 4.0, "y": []}
        | {"r": "", "v": "HTTP/1.1", "f": True, "n": 0}
    ]
    blob = orjson.dumps(meta)
    assert decode_variants(struct.pack(">I", len(blob)) + blob) == [B]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x00\x00\x05{bad}",
        encode_variants([A])[:-3],
        encode_variants([A]) + b"extra",
        b"\x00\x00\x00\x02[1]",
    ],
)
def test_damaged_records_are_corrupt(data: bytes) -> None:
    """Truncated, padded, non-JSON or wrongly shaped records raise CorruptEntryError."""
    with pytest.raises(CorruptEntryError):
        decode_variants(data)
