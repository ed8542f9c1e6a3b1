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
