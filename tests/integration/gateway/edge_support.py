"""Helpers of the edge-policy tests: an origin fixture, configs and a small HTTP client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict
from yarl import URL

from tests.integration.gateway.edge_origin import EdgeOrigin


@pytest.fixture
def origin() -> Iterator[EdgeOrigin]:
    """A running :class:`EdgeOrigin`."""
    server = EdgeOrigin().start()
    try:
        yield server
    finally:
        server.stop()


def edge_config(*urls: str, edge: dict[str, Any] | None = None, **route: Any) -> dict[str, Any]:
    """One cluster (``svc``, no probes) and a catch-all route ``all`` with ``route`` keys."""
    return {
        "clusters": [
            {
                "name": "svc",
                "instances": [{"url": url} for url in urls],
                "health": {"active": False},
            }
        ],
        "routes": [{"name": "all", "match": {"path_prefix": "/"}, "cluster": "svc", **route}],
        "admin": {"token": "t0ken"},
        "watch": False,
        "edge": edge or {},
    }


async def fetch(
    url: str | URL, method: str = "GET", **kwargs: Any
) -> tuple[int, CIMultiDict[str], bytes]:
    """One request with a fresh session: status, headers, body."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, **kwargs) as response,
    ):
        return response.status, response.headers.copy(), await response.read()
