"""Point the guide modules at the local httpbin and record the events they log."""

from __future__ import annotations

import time
from collections.abc import Iterator, MutableMapping
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.servers.httpbin_server import HttpbinServer


class Events:
    """The structlog events logged during a test."""

    def __init__(self, entries: list[MutableMapping[str, Any]]) -> None:
        self.entries = entries

    def named(self, event: str) -> list[MutableMapping[str, Any]]:
        """Every event whose message is ``event``."""
        return [e for e in self.entries if e["event"] == event]


@pytest.fixture
def events() -> Iterator[Events]:
    """Capture structlog events (the guides log through ``get_logger``)."""
    with capture_logs() as entries:
        yield Events(entries)


def at_httpbin(monkeypatch: pytest.MonkeyPatch, module: ModuleType, server: HttpbinServer) -> None:
    """Replace the guide's https://httpbin.org by the local server's URL."""
    monkeypatch.setattr(module, "BASE_URL", server.url)


def without_sleeps(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> list[float]:
    """Record the guide's ``time.sleep`` calls instead of sleeping (time still reads real)."""
    slept: list[float] = []
    fake = SimpleNamespace(time=time.time, sleep=slept.append)
    monkeypatch.setattr(module, "time", fake)
    return slept
