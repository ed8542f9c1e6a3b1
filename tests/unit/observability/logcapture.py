"""A structlog setup that renders JSON lines into a string, for log assertions.

Tests configure structlog the way an application would (the library configures
nothing), then read back every line and check each is exactly one JSON record.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import structlog


class LogCapture:
    """The captured output: raw text, and one parsed record per line."""

    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    @property
    def text(self) -> str:
        """Everything written so far."""
        return self._stream.getvalue()

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every line parsed as JSON; fails the test when a line is not one record."""
        out = []
        for line in self.text.splitlines():
            record = orjson.loads(line)
            assert isinstance(record, dict), line
            out.append(record)
        return out

    def events(self, name: str) -> list[dict[str, Any]]:
        """The records whose ``event`` is ``name``."""
        return [r for r in self.records if r.get("event") == name]


@pytest.fixture
def json_logs() -> Iterator[LogCapture]:
    """structlog rendering JSON lines (debug and up) into a captured stream."""
    stream = io.StringIO()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.WriteLoggerFactory(stream),
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    try:
        yield LogCapture(stream)
    finally:
        structlog.reset_defaults()
