"""The transports the parity tests run on, by name: each built fresh per test.

httpx2 and pyreqwest are imported when built, so a test module that names them loads
without them until a case uses them. httpx2 runs HTTP/1.1 (the raw servers of these
tests speak nothing else).
"""

from __future__ import annotations

from collections.abc import Callable

from flext_api.transports import AiohttpTransport, H1Transport, Transport


def httpx_h1() -> Transport:
    """An ``HttpxTransport`` on HTTP/1.1."""
    from flext_api.transports import HttpxTransport

    return HttpxTransport(http2=False)


def pyreqwest() -> Transport:
    """A ``PyreqwestTransport`` with its defaults."""
    from flext_api.transports import PyreqwestTransport

    return PyreqwestTransport()


#: Every built-in network transport.
TRANSPORTS: dict[str, Callable[[], Transport]] = {
    "aiohttp": AiohttpTransport,
    "h1": H1Transport,
    "httpx": httpx_h1,
    "pyreqwest": pyreqwest,
}
#: The transports that decode a body and speak TLS themselves (H1Transport passes bodies
#: through as they are, and hands ``https://`` to its fallback).
DECODING: dict[str, Callable[[], Transport]] = {
    name: TRANSPORTS[name] for name in ("aiohttp", "httpx", "pyreqwest")
}
WITH_TLS = DECODING
