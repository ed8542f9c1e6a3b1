"""Fixtures of the server tests: a log stream and an app builder that writes into it."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from flext_api import ServerConfig
from tests.server.helpers import build_app
from tests.server.live import live

__all__ = ["Build", "build", "live", "log_stream"]

Build = Callable[..., FastAPI]


@pytest.fixture
def log_stream() -> io.StringIO:
    """Where the app under test writes its JSON log lines."""
    return io.StringIO()


@pytest.fixture
def build(log_stream: io.StringIO) -> Build:
    """``build(config=None, **factory_kwargs)`` -> app logging into ``log_stream``."""

    def factory(config: ServerConfig | None = None, **kwargs: Any) -> FastAPI:
        return build_app(config, stream=log_stream, **kwargs)

    return factory
