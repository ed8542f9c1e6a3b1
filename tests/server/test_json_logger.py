"""The default JSON-lines logger writes what structlog's JSON pipeline would."""

from __future__ import annotations

import io
import json
import logging
import sys
import uuid
from typing import Any

import pytest
import structlog

from flext_api.server import make_json_logger


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_record_fields() -> None:
    """A record has the logger name, the fields, the event, the level and a UTC timestamp."""
    stream = io.StringIO()
    make_json_logger(stream, name="svc").info("hello", a=1)
    (record,) = _records(stream)
    assert record["logger_name"] == "svc"
    assert (record["a"], record["event"], record["level"]) == (1, "hello", "info")
    assert record["timestamp"].endswith("Z") and len(record["timestamp"]) == 27


def test_contextvars_merged_call_wins() -> None:
    """structlog context variables are merged in; a key given to the call wins."""
    stream = io.StringIO()
    tokens = structlog.contextvars.bind_contextvars(request_id="r1", user="u")
    try:
        make_json_logger(stream).info("e", user="explicit")
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
    (record,) = _records(stream)
    assert (record["request_id"], record["user"]) == ("r1", "explicit")


def test_level_filter_and_names() -> None:
    """Records below the level are dropped; warn is warning, log() maps numeric levels."""
    stream = io.StringIO()
    log = make_json_logger(stream, level=logging.WARNING)
    log.debug("d")
    log.info("i")
    log.warn("w")
    log.error("e")
    log.critical("c")
    log.log(logging.ERROR, "numeric")
    levels = [(r["event"], r["level"]) for r in _records(stream)]
    assert levels == [("w", "warning"), ("e", "error"), ("c", "critical"), ("numeric", "error")]


def test_bind_unbind_new() -> None:
    """bind adds context, unbind/try_unbind remove it, new starts over."""
    stream = io.StringIO()
    log = make_json_logger(stream).bind(a=1, b=2)
    log.unbind("a").info("one")
    log.try_unbind("b", "missing").info("two")
    log.new(c=3).info("three")
    with pytest.raises(KeyError):
        log.unbind("missing")
    one, two, three = _records(stream)
    assert "a" not in one and one["b"] == 2
    assert "b" not in two and two["a"] == 1
    assert three["c"] == 3 and "logger_name" not in three


def test_exception_with_traceback() -> None:
    """exception() writes an error record with the current traceback."""
    stream = io.StringIO()
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        make_json_logger(stream).exception("failed")
    (record,) = _records(stream)
    assert record["level"] == "error"
    assert "ZeroDivisionError: boom" in record["exception"]
    assert "exc_info" not in record


def test_exc_info_forms() -> None:
    """exc_info takes an exception or an exc_info tuple; false or no current one adds nothing."""
    stream = io.StringIO()
    log = make_json_logger(stream)
    error = ValueError("bad")
    log.error("instance", exc_info=error)
    try:
        raise KeyError("k")
    except KeyError:
        log.error("tuple", exc_info=sys.exc_info())
    log.error("none current", exc_info=True)
    log.error("false", exc_info=False)
    instance, from_tuple, none_current, false = _records(stream)
    assert "ValueError: bad" in instance["exception"]
    assert "KeyError: 'k'" in from_tuple["exception"]
    assert "exception" not in none_current and "exception" not in false


class _Odd:
    def __str__(self) -> str:
        return "odd!"


def test_odd_values_written_as_str() -> None:
    """A value orjson cannot encode is written as its str(), and the record stays one line."""
    stream = io.StringIO()
    value = _Odd()
    make_json_logger(stream).info("e", odd=value, id=uuid.UUID(int=1), text="a\r\nb")
    assert len(stream.getvalue().splitlines()) == 1
    (record,) = _records(stream)
    assert record["odd"] == "odd!" and record["text"] == "a\r\nb"


def test_repr() -> None:
    """The repr names the level and the bound context."""
    log = make_json_logger(io.StringIO(), name="svc").bind(x=1)
    assert repr(log) == "<JsonLogger level=info context={'logger_name': 'svc', 'x': 1}>"


def test_lone_surrogates_are_escaped_not_fatal() -> None:
    """A lone surrogate in a field, a str() of an odd value or a traceback is written as
    the text \\ud800: the record is written, never lost to an encoding error."""
    stream = io.StringIO()
    try:
        raise ValueError("cannot price sku ab\ud800")
    except ValueError as exc:
        error = exc
    make_json_logger(stream).error("unhandled exception", exc_info=error, sku="ab\ud800")
    (record,) = _records(stream)
    assert record["sku"] == "ab\\ud800"
    assert "cannot price sku ab\\ud800" in record["exception"]
