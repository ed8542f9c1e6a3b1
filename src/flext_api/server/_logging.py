"""The server's default logger: one JSON object per line, request ID included.

:func:`make_json_logger` returns a :class:`JsonLogger`, a small structlog-compatible
bound logger (``debug`` ... ``critical``, ``exception``, ``log``, ``bind``, ``unbind``,
``new``). It writes what structlog's pipeline ``merge_contextvars -> add_log_level ->
timestamp -> format_exc_info -> JSONRenderer(orjson)`` writes, without structlog's
generic machinery: the access log writes one record per request, and that machinery was
half of the factory's cost over a bare FastAPI app (75k of 150k instructions per
hello-world request, measured with callgrind). Anything that needs more (your own
processors, another renderer) passes its own structlog logger to the factory.

- structlog's context variables are merged in (``bind_contextvars``; the request-ID
  middleware binds ``request_id``), keys given to the call winning;
- ``level`` is the method name (``warn`` -> ``warning``, ``exception`` -> ``error``),
  records below the logger's level are dropped;
- ``timestamp`` is ISO 8601 UTC with microseconds;
- ``exc_info`` (an exception, a ``sys.exc_info()`` tuple or true for the current one)
  becomes an ``exception`` field with the formatted traceback; ``exception()`` sets it;
- values orjson cannot encode are written as ``str(value)``, so an odd value (a UUID, a
  Decimal) never turns a log call into a crash, and a lone surrogate (a client's
  ``"\\ud800"`` quoted in a message or a traceback) is written as the text ``\\ud800``;
  JSON escapes CR/LF inside strings, so a record is always exactly one line.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TextIO

import orjson
from structlog.contextvars import STRUCTLOG_KEY_PREFIX

from ._json import dumps

__all__ = ["JsonLogger", "make_json_logger"]

_PREFIX_LEN = len(STRUCTLOG_KEY_PREFIX)
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_LEVEL_NAMES = {value: name for name, value in _LEVELS.items()}


class _Timestamp:
    """ISO 8601 UTC with microseconds, formatting the date once a second."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1e6):06d}Z"


def _exc_text(value: Any) -> str | None:
    info: tuple[type[BaseException], BaseException, TracebackType | None] | None = None
    if isinstance(value, BaseException):
        info = (type(value), value, value.__traceback__)
    elif isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        info = value
    elif value:
        current = sys.exc_info()
        if current[1] is not None:
            info = (type(current[1]), current[1], current[2])
    if info is None:
        return None
    return "".join(traceback.format_exception(*info)).rstrip("\n")


class _Sink:
    """What the loggers bound from one :func:`make_json_logger` call share."""

    __slots__ = ("minimum", "stream", "timestamp")

    def __init__(self, stream: TextIO, minimum: int) -> None:
        self.stream = stream
        self.minimum = minimum
        self.timestamp = _Timestamp()


class JsonLogger:
    """A structlog-compatible bound logger writing JSON lines (see module docstring)."""

    __slots__ = ("_context", "_sink")

    def __init__(self, sink: _Sink, context: Mapping[str, Any]) -> None:
        self._sink = sink
        self._context = dict(context)

    def __repr__(self) -> str:
        level = _LEVEL_NAMES.get(self._sink.minimum, self._sink.minimum)
        return f"<JsonLogger level={level} context={self._context!r}>"

    # -- binding ---------------------------------------------------------------------------
    def bind(self, **values: Any) -> JsonLogger:
        """A logger whose records also carry ``values``."""
        return JsonLogger(self._sink, {**self._context, **values})

    def unbind(self, *keys: str) -> JsonLogger:
        """A logger without ``keys`` (a missing key is a KeyError, as in structlog)."""
        context = dict(self._context)
        for key in keys:
            del context[key]
        return JsonLogger(self._sink, context)

    def try_unbind(self, *keys: str) -> JsonLogger:
        """A logger without ``keys``, ignoring missing ones."""
        return JsonLogger(self._sink, {k: v for k, v in self._context.items() if k not in keys})

    def new(self, **values: Any) -> JsonLogger:
        """A logger with only ``values`` as its context."""
        return JsonLogger(self._sink, values)

    # -- records ---------------------------------------------------------------------------
    def emit(self, level: str, event: Any, fields: dict[str, Any]) -> None:
        """Write a record of ``level`` (``"info"``...) from a ready ``fields`` dict.

        What ``info(event, **fields)`` does, for callers that build the dict anyway
        (the access log): no keyword packing on the way.
        """
        if _LEVELS[level] >= self._sink.minimum:
            self.write(level, {**self._context, **fields, "event": event})

    @property
    def context(self) -> Mapping[str, Any]:
        """The values bound to this logger (the first keys of each of its records)."""
        return self._context

    def write(self, level: str, record: dict[str, Any]) -> None:
        """Write ``record``, which holds :attr:`context`, the fields and ``event``, in order.

        The context variables, ``level`` and ``timestamp`` are added as :meth:`emit`
        adds them; for callers that build the whole record in one dict (the access log).
        """
        sink = self._sink
        if _LEVELS[level] < sink.minimum:
            return
        for var, value in contextvars.copy_context().items():
            name = var.name
            if value is not Ellipsis and name.startswith(STRUCTLOG_KEY_PREFIX):
                record.setdefault(name[_PREFIX_LEN:], value)
        record["level"] = level
        record["timestamp"] = sink.timestamp()
        if "exc_info" in record:
            text = _exc_text(record.pop("exc_info"))
            if text is not None:
                record["exception"] = text
        line = dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)
        stream = sink.stream
        stream.write(line.decode())
        stream.flush()

    def debug(self, event: Any = None, **fields: Any) -> None:
        """Write a ``debug`` record."""
        self.emit("debug", event, fields)

    def info(self, event: Any = None, **fields: Any) -> None:
        """Write an ``info`` record."""
        self.emit("info", event, fields)

    def warning(self, event: Any = None, **fields: Any) -> None:
        """Write a ``warning`` record."""
        self.emit("warning", event, fields)

    warn = warning

    def error(self, event: Any = None, **fields: Any) -> None:
        """Write an ``error`` record."""
        self.emit("error", event, fields)

    def critical(self, event: Any = None, **fields: Any) -> None:
        """Write a ``critical`` record."""
        self.emit("critical", event, fields)

    def exception(self, event: Any = None, **fields: Any) -> None:
        """Write an ``error`` record with the current exception's traceback."""
        fields.setdefault("exc_info", True)
        self.emit("error", event, fields)

    def log(self, level: int, event: Any = None, **fields: Any) -> None:
        """Write a record at the numeric ``level`` (``logging.INFO``...)."""
        self.emit(_LEVEL_NAMES.get(level, "critical"), event, fields)


def make_json_logger(
    stream: TextIO | None = None, *, name: str = "flext_api.server", level: int = logging.INFO
) -> JsonLogger:
    """A logger writing JSON lines to ``stream`` (default: standard output)."""
    return JsonLogger(
        _Sink(stream if stream is not None else sys.stdout, level), {"logger_name": name}
    )
