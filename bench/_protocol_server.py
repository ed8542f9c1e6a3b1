"""The upstream of bench/protocols.py: one aiohttp process serving WebSocket echo, an SSE
stream of N events and strawberry GraphQL. Run as ``python _protocol_server.py PORT``.

aiohttp serves all three so that the server costs the same for every client measured.
"""

from __future__ import annotations

import sys

import strawberry
from aiohttp import WSMsgType, web
from strawberry.aiohttp.views import GraphQLView


@strawberry.type
class Query:
    @strawberry.field
    def hello(self, name: str = "world") -> str:
        return f"hello {name}"


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=0)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            await ws.send_str(msg.data)
    return ws


async def events(request: web.Request) -> web.StreamResponse:
    n = int(request.query.get("n", "1000"))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    batch: list[bytes] = []
    for i in range(n):
        batch.append(b'id: %d\nevent: tick\ndata: {"n": %d, "payload": "abcdefghij"}\n\n' % (i, i))
        if len(batch) == 100:
            await resp.write(b"".join(batch))
            batch = []
    if batch:
        await resp.write(b"".join(batch))
    await resp.write_eof()
    return resp


def main() -> None:
    app = web.Application()
    app.router.add_get("/ws", echo)
    app.router.add_get("/sse", events)
    view = GraphQLView(schema=strawberry.Schema(query=Query), graphql_ide=None)
    app.router.add_route("*", "/graphql", view)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
