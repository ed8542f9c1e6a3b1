"""Transports: the only way bytes leave the process.

``HttpxTransport`` needs the ``http2`` extra, ``H1Transport`` (httptools) the ``gateway``
extra and ``PyreqwestTransport`` the ``pyreqwest`` extra; each is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr as _lazy_getattr
from ._aiohttp import AiohttpTransport as AiohttpTransport
from ._asgi import ASGITransport as ASGITransport
from ._base import Transport as Transport
from ._base import map_os_error as map_os_error
from ._mock import MockTransport as MockTransport

if TYPE_CHECKING:
    from ._h1 import H1Transport as H1Transport
    from ._httpx import HttpxTransport as HttpxTransport
    from ._pyreqwest import PyreqwestTransport as PyreqwestTransport

__all__ = [
    "ASGITransport",
    "AiohttpTransport",
    "H1Transport",
    "HttpxTransport",
    "MockTransport",
    "PyreqwestTransport",
    "Transport",
    "map_os_error",
]


__getattr__ = _lazy_getattr(
    __name__,
    {
        "H1Transport": ("._h1", "gateway"),
        "HttpxTransport": ("._httpx", "http2"),
        "PyreqwestTransport": ("._pyreqwest", "pyreqwest"),
    },
)
