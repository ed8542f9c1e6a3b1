"""The value codec: bytes and JSON round-trip, anything else is a TypeError, damage is detected."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid

import pytest

from flext_api.cache._codec import CorruptEntryError, decode_value, encode_value


@pytest.mark.parametrize("value", [b"raw", b"", {"a": [1, 2.5, None, True]}, "text", 3, None, []])
def test_round_trip(value: object) -> None:
    """Bytes and JSON-able values come back equal (and bytes stay bytes)."""
    assert decode_value(encode_value("k", value)) == value


def test_bytes_and_json_are_kept_apart() -> None:
    """b'[1]' comes back as bytes, [1] as a list."""
    assert decode_value(encode_value("k", b"[1]")) == b"[1]"
    assert decode_value(encode_value("k", [1])) == [1]


def test_bytearray_is_stored_as_bytes() -> None:
    """A bytearray is stored as bytes."""
    assert decode_value(encode_value("k", bytearray(b"ab"))) == b"ab"


def test_unserializable_value_is_a_type_error_naming_key_and_type() -> None:
    """An object orjson cannot serialize is a TypeError naming the key and the type."""
    with pytest.raises(TypeError, match=r"key 'user:1': object is neither bytes nor JSON"):
        encode_value("user:1", object())


@pytest.mark.parametrize("data", [b"", b"x123", b"j{not json"])
def test_damaged_data_is_a_corrupt_entry(data: bytes) -> None:
    """Unknown tags and broken JSON raise CorruptEntryError (a ValueError)."""
    with pytest.raises(CorruptEntryError):
        decode_value(data)


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), {"a": [1.0, float("-inf")]}, ({"deep": float("nan")},)],
)
def test_non_finite_float_is_a_type_error(value: object) -> None:
    """NaN and infinities are refused: orjson would write null and None would come back."""
    with pytest.raises(TypeError, match="NaN or infinite"):
        encode_value("k", value)


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    pass


@dataclasses.dataclass
class Point:
    x: float


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (datetime.datetime(2024, 1, 1), "datetime"),
        (datetime.date(2024, 1, 1), "date"),
        (uuid.UUID(int=1), "UUID"),
        (Color.RED, "Color"),
        (Level.HIGH, "Level"),
        (Point(1.5), "Point"),
        (Name("ada"), "Name"),
        ({"when": datetime.time(1, 2)}, "time"),
        ({"ids": [1, (2, uuid.UUID(int=2))]}, "UUID"),
        ({"level": Level.HIGH}, "Level"),
        ({Color.RED.value: [Color.RED]}, "Color"),
        ([Point(0.0)], "Point"),
    ],
)
def test_values_json_would_bring_back_as_another_type_are_refused(
    value: object, named: str
) -> None:
    """A datetime, UUID, Enum, dataclass or str subclass, at any depth, is a TypeError.

    orjson writes them, but another process would read a str, an int or a dict back.
    """
    with pytest.raises(TypeError, match=rf"key 'k': .*\b{named}\b") as info:
        encode_value("k", value)
    assert "plain JSON data" in str(info.value)


def test_a_tuple_is_the_one_container_that_comes_back_changed() -> None:
    """Tuples are plain JSON data and come back as lists (the documented exception)."""
    assert decode_value(encode_value("k", {"pair": (1, ("a", None))})) == {"pair": [1, ["a", None]]}
