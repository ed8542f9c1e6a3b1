"""RESP2 replies read by the limiter's lean Redis connection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flext_api.gateway._resp import _INCOMPLETE, RedisReplyError, RespConnection, parse_reply


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b":42\r\n", 42),
        (b"+OK\r\n", b"OK"),
        (b"$3\r\nabc\r\n", b"abc"),
        (b"$-1\r\n", None),
        (b"*-1\r\n", None),
        (b"*5\r\n:1\r\n:0\r\n:0\r\n:7\r\n:120000\r\n", [1, 0, 0, 7, 120000]),
        (b"*3\r\n:1\r\n$2\r\nhi\r\n*1\r\n:2\r\n", [1, b"hi", [2]]),
    ],
)
def test_a_whole_reply_is_read(data: bytes, value: Any) -> None:
    """Integers, strings, nil and (nested) arrays are read to the reply's end."""
    assert parse_reply(data + b":9\r\n", 0) == (value, len(data))


def test_integer_arrays_back_to_back_are_read_one_reply_at_a_time() -> None:
    """The limiter's replies, pipelined: each array ends where the next begins, and an
    integer reply right after an array is not taken for one of its items."""
    one, two = b"*5\r\n:1\r\n:0\r\n:0\r\n:7\r\n:120000\r\n", b"*2\r\n:-1\r\n:3\r\n"
    data = one + two + b":5\r\n:6\r\n"
    first, end = parse_reply(data, 0)
    second, after = parse_reply(data, end)
    assert (first, second) == ([1, 0, 0, 7, 120000], [-1, 3])
    assert (end, after) == (len(one), len(one) + len(two))
    assert parse_reply(data, after) == (5, after + 4)


def test_an_error_reply_is_returned_as_an_exception_value() -> None:
    """``-ERR ...`` becomes a RedisReplyError value, not a raise."""
    value, end = parse_reply(b"-NOSCRIPT No matching script\r\n", 0)
    assert isinstance(value, RedisReplyError) and str(value).startswith("NOSCRIPT")
    assert end == 30


@pytest.mark.parametrize(
    "data", [b":4", b"$3\r\nab", b"*2\r\n:1\r\n", b"*2\r\n:1\r\n:2", b"*2\r\n:1\r\n$2\r\nh"]
)
def test_a_cut_reply_is_incomplete(data: bytes) -> None:
    """A reply cut anywhere is reported incomplete, with the position unchanged."""
    assert parse_reply(data, 0) == (_INCOMPLETE, 0)


def test_a_foreign_byte_is_an_error() -> None:
    """A reply that does not start with a RESP2 type byte raises ValueError."""
    with pytest.raises(ValueError, match="not a RESP2 reply"):
        parse_reply(b"?what\r\n", 0)


def test_arguments_encode_keys_then_args() -> None:
    """The encoded arguments are the key count, the keys and the args as bulk strings."""
    count, body = RespConnection.arguments([b"k1", b"k2"], [b"10"])
    assert count == b"*6\r\n"
    assert body == b"$1\r\n2\r\n$2\r\nk1\r\n$2\r\nk2\r\n$2\r\n10\r\n"


def test_repr_says_where_and_whether_open() -> None:
    """The repr names the address and the connection state."""
    connection = RespConnection({"host": "127.0.0.1", "port": 6379, "tls": False}, "return 1")
    assert repr(connection) == "<RespConnection 127.0.0.1:6379 [closed]>"


async def test_replies_split_across_reads_are_joined() -> None:
    """A reply cut between two reads is read whole once its rest arrives."""
    from flext_api.gateway._resp import _Protocol

    connection = RespConnection({"host": "127.0.0.1", "port": 1, "tls": False}, "return 1")
    protocol = _Protocol(connection)
    first = asyncio.get_running_loop().create_future()
    skipped = asyncio.get_running_loop().create_future()
    second = asyncio.get_running_loop().create_future()
    protocol.waiting.extend([first, skipped, second])
    skipped.cancel()  # its caller went away: its reply is read and dropped
    protocol.data_received(b"*2\r\n:1\r\n:")
    assert not first.done()
    protocol.data_received(b"2\r\n:5\r\n:3\r\n")
    assert first.result() == [1, 2] and second.result() == 3
    assert protocol.received == 3 and protocol.buf == b""
