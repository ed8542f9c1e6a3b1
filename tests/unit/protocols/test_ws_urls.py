"""WebSocket URLs made from the client's base URL: only a leading ``scheme://`` makes a
URL absolute (a ``://`` in the query, as in ``/ws?next=http://x``, used to be taken for
one, so the path was sent as the whole URL)."""

from __future__ import annotations

import pytest

from flext_api.protocols._websocket import _ws_url


@pytest.mark.parametrize(
    ("base", "url", "expected"),
    [
        ("http://api.example", "/ws", "ws://api.example/ws"),
        ("https://api.example/v1", "ws", "wss://api.example/v1/ws"),
        (
            "http://api.example",
            "/ws?next=http://other.example/",
            "ws://api.example/ws?next=http://other.example/",
        ),
        ("http://api.example", "ws://other.example/ws", "ws://other.example/ws"),
        ("http://api.example", "HTTPS://other.example/ws", "wss://other.example/ws"),
        (None, "http://other.example/ws?to=https://x", "ws://other.example/ws?to=https://x"),
    ],
)
def test_ws_urls(base: str | None, url: str, expected: str) -> None:
    assert _ws_url(base, url) == expected
