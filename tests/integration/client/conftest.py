"""Fixtures shared by the client's integration tests."""

from __future__ import annotations

import pytest

from flext_api.transports import _aiohttp


@pytest.fixture(params=["direct", "session"])
def aiohttp_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test over both ways the aiohttp transport sends: its direct path over
    aiohttp's request objects, and ``session.request`` (taken when the installed aiohttp
    does not have the shape the direct path needs)."""
    if request.param == "session":
        monkeypatch.setattr(_aiohttp, "_DIRECT_PARAMS", None)
    return str(request.param)
