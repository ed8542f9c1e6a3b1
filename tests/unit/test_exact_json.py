"""JSON numbers come back as they were sent: integers past 64 bits stay ints."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from flext_api import HttpResponse
from flext_api._exactjson import dumps, loads

BIG = 123456789012345678901234567890
DOCS: list[Any] = [
    {"amount": BIG, "rate": 1.5, "name": "x"},
    [-9223372036854775809, 18446744073709551616, 2**64 - 1, -(2**63)],
    {"nested": [{"id": 10**30}]},
    {"pi": 3.14159265358979323846264338327950288419716939937510},  # a long float stays float
]


@pytest.mark.parametrize("doc", DOCS)
def test_every_number_reads_back_as_the_standard_library_reads_it(doc: Any) -> None:
    """orjson turned the big integers into floats without a word."""
    text = json.dumps(doc)
    assert loads(text.encode()) == json.loads(text) == loads(text)
    assert json.loads(dumps(loads(text.encode()))) == json.loads(text)


def test_orjson_alone_loses_the_digits() -> None:
    """Why this module exists: the silent float of a 30-digit integer."""
    assert orjson.loads(str(BIG)) != BIG
    assert loads(str(BIG)) == BIG and type(loads(str(BIG))) is int


@pytest.mark.parametrize(
    "bad",
    [
        b"[NaN, 1234567890123456789012]",
        b'{"a": 1234567890123456789012 ',
        b"\xff1234567890123456789012",
        b"[" * 5000 + b"1234567890123456789012" + b"]" * 5000,
        b"[NaN]",
        b"{",
    ],
)
def test_bad_documents_are_orjson_errors_on_both_paths(bad: bytes) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        loads(bad)


def test_response_json_keeps_big_integers() -> None:
    body = b'{"balance": 123456789012345678901234567890, "ok": true}'
    response = HttpResponse(200, content=body, headers={"content-type": "application/json"})
    assert response.json() == {"balance": BIG, "ok": True}


def test_dumps_refuses_what_it_cannot_write() -> None:
    with pytest.raises(TypeError):
        dumps({"x": object()})
