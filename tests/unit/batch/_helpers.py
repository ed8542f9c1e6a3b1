"""Shared helpers for the batch unit tests: a mock-backed client and collectors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from flext_api import HttpRequest, HttpResponse
from flext_api.client import FlextApiClient
from flext_api.client.batch._models import BatchResult
from flext_api.transports import MockTransport

Handler = Callable[[HttpRequest], "HttpResponse | Awaitable[HttpResponse]"]


def json_response(status: int = 200, body: bytes = b'{"ok": true}') -> HttpResponse:
    """A JSON response."""
    return HttpResponse(status, content=body, headers={"Content-Type": "application/json"})


def ok_handler(request: HttpRequest) -> HttpResponse:
    """200 with a small JSON body naming the path."""
    path = request.url.split("://", 1)[1].split("/", 1)[1]
    return json_response(body=b'{"path": "/' + path.encode() + b'"}')


def make_client(handler: Handler = ok_handler, *plugins: Any, **kwargs: Any) -> FlextApiClient:
    """A client on MockTransport with no default stages (tests add what they need)."""
    return FlextApiClient(
        "http://svc",
        transport=MockTransport(handler),
        default_plugins=False,
        plugins=list(plugins),
        **kwargs,
    )


async def collect(results: AsyncIterator[BatchResult]) -> list[BatchResult]:
    """Every result of a batch."""
    return [result async for result in results]


def other_tasks() -> list[asyncio.Task[Any]]:
    """Tasks alive besides the current one (a batch must leave none behind)."""
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
