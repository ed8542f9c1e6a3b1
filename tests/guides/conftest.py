"""Point the guide modules at the local httpbin and record the events they log."""

from __future__ import annotations

import time
from collections.abc import Iterator, MutableMapping
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from structlog.testing import capture_logs

from flext_api.client import FlextApiSyncClient, FlextDictClient
from flext_api.testing import set_testing
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


class GuideClock:
    """The guide module's ``time``: ``sleep`` advances ``time()`` instead of waiting."""

    def __init__(self) -> None:
        self.now = time.time()
        self.slept: list[float] = []

    def time(self) -> float:
        """The simulated wall clock."""
        return self.now

    def sleep(self, seconds: float) -> None:
        """Record the sleep and move the clock on."""
        self.slept.append(seconds)
        self.now += seconds


def without_sleeps(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> GuideClock:
    """Give the guide module a simulated clock: its sleeps take no real time."""
    clock = GuideClock()
    monkeypatch.setattr(module, "time", SimpleNamespace(time=clock.time, sleep=clock.sleep))
    return clock


@pytest.fixture(autouse=True)
def _guide_setup(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No backoff sleeps; close the clients the guides create and never close."""
    made: list[FlextDictClient] = []
    init = FlextDictClient.__init__

    def tracking(self: FlextDictClient, client: FlextApiSyncClient) -> None:
        init(self, client)
        made.append(self)

    monkeypatch.setattr(FlextDictClient, "__init__", tracking)
    with set_testing(True):
        yield
    for client in made:
        client.close()
