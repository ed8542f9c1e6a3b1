"""The smallest honest ASGI reverse proxy on aiohttp: the baseline the gateway is compared to.

One shared ``aiohttp.ClientSession``, the request forwarded with its method, path, query,
headers and body, the response streamed back; no routing, retries, breakers, health,
metrics or logs. ``UPSTREAM`` (env) is the upstream's base URL. Serve it with uvicorn or
granian: ``uvicorn _minimal_proxy:app`` / ``granian --interface asgi _minimal_proxy:app``.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:8080")
_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te", b"host"}
_session: aiohttp.ClientSession | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI entry point."""
    global _session
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                if _session is not None:
                    await _session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if _session is None:
        _session = aiohttp.ClientSession(auto_decompress=False)
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    query = scope.get("query_string", b"").decode()
    url = UPSTREAM + scope["path"] + ("?" + query if query else "")
    headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k not in _HOP]
    async with _session.request(scope["method"], url, headers=headers, data=body) as response:
        out = [
            (k.lower().encode(), v.encode())
            for k, v in response.headers.items()
            if k.lower().encode() not in _HOP
        ]
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        async for chunk in response.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
