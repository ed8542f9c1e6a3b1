"""Shared pytest configuration: loads the local test-server fixtures, and starts every
test with the interpreter's recursion limit and structlog's configuration as the session
found them."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
import structlog

pytest_plugins = ["tests.servers.fixtures"]

_RECURSION_LIMIT = sys.getrecursionlimit()
_STRUCTLOG = structlog.get_config()


@pytest.fixture(autouse=True)
def _recursion_limit_kept() -> Iterator[None]:
    """Each test runs with the session's recursion limit, and leaves it so.

    mypy, run in-process by the docs and typing tests (``mypy.api.run``, some in fixtures
    of a wider scope), raises the limit to 16384 for good; tests that depend on where
    Python's parsers give up on deep nesting (GraphQL's JSON nested too deeply) then
    depended on the test order.
    """
    sys.setrecursionlimit(_RECURSION_LIMIT)
    yield
    sys.setrecursionlimit(_RECURSION_LIMIT)


@pytest.fixture(autouse=True)
def _structlog_config_kept() -> Iterator[None]:
    """Each test runs with the session's structlog configuration, and leaves it so.

    The CLI, run in-process by its tests, configures structlog for the whole process
    (warnings and up, to stderr: stdout is the command's output); a later test that
    captures info events (the guides') then saw none, depending on the test order.
    """
    structlog.configure(**_STRUCTLOG)
    yield
    structlog.configure(**_STRUCTLOG)
