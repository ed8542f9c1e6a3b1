"""The listener's parser choice: httptools when importable, h11 otherwise or on request."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from flext_api.server._protocol import (
    HeaderTimeoutH11Protocol,
    httptools_available,
    protocol_with_header_timeout,
)


def test_auto_falls_back_to_h11_without_httptools(monkeypatch: pytest.MonkeyPatch) -> None:
    """With httptools not importable, ``auto`` gives the h11 protocol."""
    monkeypatch.setitem(sys.modules, "httptools", None)
    assert httptools_available() is False
    protocol = protocol_with_header_timeout(3.0, parser="auto")
    assert issubclass(protocol, HeaderTimeoutH11Protocol)
    assert protocol.header_timeout == 3.0


def test_auto_uses_httptools_when_installed() -> None:
    """With httptools importable, ``auto`` gives the httptools protocol and its head bound."""
    pytest.importorskip("httptools")
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    protocol: Any = protocol_with_header_timeout(3.0, parser="auto", max_head_bytes=4096)
    assert issubclass(protocol, HttpToolsProtocol)
    assert (protocol.header_timeout, protocol.max_head_bytes) == (3.0, 4096)


def test_h11_is_kept_when_asked() -> None:
    """``parser: h11`` gives the h11 protocol even when httptools is installed."""
    assert issubclass(protocol_with_header_timeout(1.0, parser="h11"), HeaderTimeoutH11Protocol)
