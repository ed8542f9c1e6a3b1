"""Helpers shared by the server and security tests: in-process client, log records, JWTs."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx2
from fastapi import FastAPI

from flext_api import ServerConfig
from flext_api.server import create_fastapi_app, make_json_logger

PEER = ("203.0.113.7", 40000)


def build_app(config: ServerConfig | None = None, *, stream: io.StringIO, **kwargs: Any) -> FastAPI:
    """``create_fastapi_app`` logging JSON lines into ``stream``."""
    return create_fastapi_app(config, logger=make_json_logger(stream), **kwargs)


@asynccontextmanager
async def serve(
    app: FastAPI, *, lifespan: bool = True, client: tuple[str, int] = PEER
) -> AsyncIterator[httpx2.AsyncClient]:
    """An httpx2 client bound to ``app`` in process, with the app's lifespan running."""
    async with AsyncExitStack() as stack:
        if lifespan:
            await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx2.ASGITransport(app=app, client=client)
        yield await stack.enter_async_context(
            httpx2.AsyncClient(transport=transport, base_url="http://testserver")
        )


def records(stream: io.StringIO, event: str | None = None) -> list[dict[str, Any]]:
    """The JSON log records written so far (optionally only those with ``event``)."""
    parsed = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [r for r in parsed if event is None or r.get("event") == event]


def problem(response: httpx2.Response) -> dict[str, Any]:
    """The response's problem document, after checking its media type."""
    assert response.headers["content-type"] == "application/problem+json"
    document: dict[str, Any] = response.json()
    return document
