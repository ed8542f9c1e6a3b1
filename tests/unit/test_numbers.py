"""``flext_api._numbers``: JSON without NaN or infinities."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from flext_api._numbers import finite_json, has_non_finite


@dataclass
class _Reading:
    value: float
    tags: list[str]


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        -math.inf,
        {"a": [1, {"b": (2.0, math.inf)}]},
        [None, [math.nan]],
        {"r": _Reading(math.nan, [])},  # orjson encodes dataclasses: walked too
    ],
)
def test_non_finite_numbers_are_found_and_refused(value: object) -> None:
    """NaN and the infinities are found at any depth and refused (orjson writes null)."""
    assert has_non_finite(value)
    with pytest.raises(ValueError, match="NaN or an infinity"):
        finite_json(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": None, "b": 1.5, "c": [True, "nan"]}, b'{"a":null,"b":1.5,"c":[true,"nan"]}'),
        ([1e308, -0.0], b"[1e+308,-0.0]"),
        (None, b"null"),
    ],
)
def test_finite_values_encode_as_orjson_does(value: object, expected: bytes) -> None:
    assert not has_non_finite(value)
    assert finite_json(value) == expected


def test_what_orjson_cannot_encode_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        finite_json({"s": {1, 2}})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"id": 2**64}, b'{"id":18446744073709551616}'),
        ([-(2**63) - 1, "é", 1.5], b'[-9223372036854775809,"\xc3\xa9",1.5]'),
        ({"n": {"deep": [10**30]}}, b'{"n":{"deep":[1000000000000000000000000000000]}}'),
    ],
)
def test_integers_past_64_bits_are_encoded_exactly(value: object, expected: bytes) -> None:
    """JSON numbers have no size limit and Python ints none either: an id past 64 bits
    (a snowflake, a bank number) is sent as written, not refused (orjson cannot)."""
    assert finite_json(value) == expected


def test_a_wide_integer_beside_what_only_orjson_encodes_is_a_type_error() -> None:
    """The wide-integer path is the standard library's: a datetime beside it is the
    TypeError of a value that cannot be sent, not a crash."""
    import datetime

    with pytest.raises(TypeError):
        finite_json({"id": 2**64, "at": datetime.datetime(2026, 1, 1)})


def test_a_wide_integer_beside_nan_is_still_refused() -> None:
    with pytest.raises(ValueError, match="NaN or an infinity"):
        finite_json({"id": 2**64, "x": math.nan})
