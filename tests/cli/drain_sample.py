"""A ``create_fastapi_app`` app for the drain tests of ``flext-api serve``.

``DRAIN_TIMEOUT`` (environment) is its ``health.drain_timeout``. ``/slow`` streams
``started``, then, once the process has handled SIGTERM, whether the app was draining
at that moment, then ``done``. ``/hang`` streams ``started`` and never ends.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from flext_api import ServerConfig
from flext_api._server_config import HealthConfig
from flext_api.server import create_fastapi_app


def make_app() -> FastAPI:
    """The app (a factory: ``--factory``)."""
    drain_timeout = float(os.environ.get("DRAIN_TIMEOUT", "30"))
    app = create_fastapi_app(ServerConfig(health=HealthConfig(drain_timeout=drain_timeout)))

    @app.get("/slow")
    async def slow() -> StreamingResponse:
        return StreamingResponse(_slow(app), media_type="text/plain")

    @app.get("/hang")
    async def hang() -> StreamingResponse:
        return StreamingResponse(_hang(), media_type="text/plain")

    return app


async def _slow(app: FastAPI) -> AsyncIterator[bytes]:
    signalled = asyncio.Event()
    loop = asyncio.get_running_loop()
    server_handler: Any = signal.getsignal(signal.SIGTERM)  # the server's

    def on_sigterm(signum: int, frame: Any) -> None:
        server_handler(signum, frame)
        loop.call_soon_threadsafe(signalled.set)

    signal.signal(signal.SIGTERM, on_sigterm)
    yield b"started\n"
    await signalled.wait()
    yield b"draining\n" if app.state.flext.draining else b"ready\n"
    yield b"done\n"


async def _hang() -> AsyncIterator[bytes]:
    yield b"started\n"
    await asyncio.Event().wait()  # never set
    yield b"never\n"
