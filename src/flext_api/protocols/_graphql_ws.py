"""GraphQL subscriptions over the ``graphql-transport-ws`` protocol.

The protocol (enisdenjo/graphql-ws, the one Apollo and strawberry speak): the client
sends ``connection_init`` and waits for ``connection_ack``; ``subscribe`` starts an
operation; the server sends ``next`` (a result), ``error`` (the operation failed) or
``complete``; either side may ``ping``, the other answers ``pong``. The socket is a
:class:`~flext_api.protocols.WebSocketConnection` without reconnect: a subscription's
state lives on the server, so a dropped one ends the iterator with its error and the
caller decides whether to subscribe again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import orjson

from .._errors import ErrorCode
from .._result import FlextResult
from ._graphql import GraphQLError, error_items, result_of
from ._ws_types import WebSocketSettings

if TYPE_CHECKING:
    from ._graphql import GraphQLClient
    from ._websocket import WebSocketConnection

__all__ = ["PROTOCOL", "subscribe"]

PROTOCOL = "graphql-transport-ws"
_ID = "1"  # the one operation on each socket
_OPERATION_MESSAGES = frozenset({"next", "error", "complete"})


async def subscribe(
    gql: GraphQLClient,
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
) -> AsyncGenerator[FlextResult[dict[str, Any]], None]:
    """Yield one result per ``next`` message until ``complete``, an error or a drop."""
    problem = gql.check(query, variables, operation_name)
    payload: dict[str, Any] = {"query": query}
    if variables:
        payload["variables"] = variables
    if operation_name:
        payload["operationName"] = operation_name
    try:
        # Encoded before connecting: a payload that cannot be sent must send nothing.
        subscription = orjson.dumps({"id": _ID, "type": "subscribe", "payload": payload})
    except TypeError as exc:
        problem = problem or f"subscription is not JSON-serializable: {exc}"
    if problem is not None:
        yield FlextResult.fail(problem, code=ErrorCode.INVALID_REQUEST)
        return
    settings = WebSocketSettings(protocols=(PROTOCOL,), reconnect=False)
    ws = gql.client.websocket(gql.endpoint, settings=settings, headers=gql.headers or None)
    opened = await ws.connect()
    if opened.is_failure:
        yield FlextResult(error=opened.exception)
        return
    completed = False
    try:
        if ws.protocol != PROTOCOL:
            yield FlextResult.fail(
                f"server did not accept {PROTOCOL!r} (chose {ws.protocol!r})",
                code=ErrorCode.PROTOCOL_ERROR,
            )
            return
        sent = await ws.send_json({"type": "connection_init", "payload": {}})
        acked = await _acknowledged(ws) if sent else sent
        if acked.is_failure:
            yield FlextResult(error=acked.exception)
            return
        sent = await ws.send_text(subscription.decode())
        if sent.is_failure:
            yield FlextResult(error=sent.exception)
            return
        while True:
            received = await ws.receive_json()
            if received.is_failure:
                yield FlextResult(error=received.exception)
                return
            message = received.value
            kind = message.get("type") if isinstance(message, dict) else None
            if kind in _OPERATION_MESSAGES and message.get("id") != _ID:
                # Only one operation runs on this socket: a result, error or end for
                # another id (or none) is not ours, and taking it would hand the caller
                # someone else's data or end the subscription early.
                yield _unexpected(message)
                return
            if kind == "next":
                yield result_of(message.get("payload"))
            elif kind == "error":
                completed = True
                yield FlextResult(error=GraphQLError(error_items(message.get("payload")), None))
                return
            elif kind == "complete":
                completed = True
                return
            elif kind == "ping":
                await ws.send_json({"type": "pong"})
            elif kind != "pong":
                yield _unexpected(message)
                return
    finally:
        if not completed and ws.closed is None:
            await ws.send_json({"id": _ID, "type": "complete"})
            await ws.drain()
        await ws.close()


async def _acknowledged(ws: WebSocketConnection) -> FlextResult[None]:
    """Wait for ``connection_ack``, answering the server's pings meanwhile (the
    protocol allows ``ping`` at any time, also before the ack).

    A server that never acknowledges must not hold the caller forever: the whole wait
    gets the client's connect timeout (its ``timeout=``, as the upgrade used), pings or
    not; then ``READ_TIMEOUT``."""
    limit = ws.connect_timeout
    try:
        async with asyncio.timeout(limit):
            while True:
                received = await ws.receive_json()
                if received.is_failure:
                    return FlextResult(error=received.exception)
                message = received.value
                kind = message.get("type") if isinstance(message, dict) else None
                if kind == "connection_ack":
                    return FlextResult.ok(None)
                if kind == "ping":
                    pong = await ws.send_json({"type": "pong"})
                    if pong.is_failure:
                        return pong
                elif kind != "pong":
                    return _unexpected(message)
    except TimeoutError:
        return FlextResult.fail(
            f"no {PROTOCOL} connection_ack within {limit}s", code=ErrorCode.READ_TIMEOUT
        )


def _unexpected(message: object) -> FlextResult[Any]:
    return FlextResult.fail(
        f"unexpected {PROTOCOL} message: {str(message)[:200]}", code=ErrorCode.PROTOCOL_ERROR
    )
