"""Three real upstream instances of one service, for the discovery integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .upstream import Upstream


@pytest.fixture
def upstreams() -> Iterator[list[Upstream]]:
    """Three running instances (``a``, ``b``, ``c``), stopped after the test."""
    servers = [Upstream(name).start() for name in ("a", "b", "c")]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()
