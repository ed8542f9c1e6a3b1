"""graphql-transport-ws edge cases against a scripted peer on the aiohttp test server."""

from __future__ import annotations

from typing import Any

import pytest

from flext_api import ErrorCode, FlextApiClient, FlextResult
from flext_api.protocols import GraphQLClient

from .conftest import LiveServer

pytestmark = pytest.mark.integration


async def _results(url: str, mode: str, **kw: Any) -> list[FlextResult[dict[str, Any]]]:
    async with FlextApiClient(url) as http:
        gql = GraphQLClient(http, f"/gqlws?mode={mode}")
        return [r async for r in gql.subscribe("subscription { x }", **kw)]


async def test_connect_failure_is_one_failed_result() -> None:
    """A subscription that cannot connect yields one CONNECT_ERROR result."""
    results = await _results("http://127.0.0.1:9", "")
    assert [r.error_code for r in results] == [ErrorCode.CONNECT_ERROR]


async def test_subprotocol_refused_is_protocol_error(ws_server: LiveServer) -> None:
    """A server that does not speak graphql-transport-ws gives PROTOCOL_ERROR."""
    results = await _results(ws_server.url, "noproto")
    assert [r.error_code for r in results] == [ErrorCode.PROTOCOL_ERROR]


async def test_close_before_ack_is_closed(ws_server: LiveServer) -> None:
    """A server that closes instead of acknowledging gives WEBSOCKET_CLOSED."""
    results = await _results(ws_server.url, "close")
    assert [r.error_code for r in results] == [ErrorCode.WEBSOCKET_CLOSED]


async def test_wrong_ack_is_protocol_error(ws_server: LiveServer) -> None:
    """An answer to connection_init that is not connection_ack gives PROTOCOL_ERROR."""
    results = await _results(ws_server.url, "noack")
    assert [r.error_code for r in results] == [ErrorCode.PROTOCOL_ERROR]


async def test_ping_is_answered_and_unknown_type_ends(ws_server: LiveServer) -> None:
    """A ping gets a pong; a server pong is ignored; an unknown message type ends it."""
    results = await _results(ws_server.url, "ping", variables={"a": 1}, operation_name="Sub")
    assert results[0].value == {"pong": "pong"}
    assert results[1].error_code is ErrorCode.PROTOCOL_ERROR and len(results) == 2
    assert {
        "payload": {"query": "subscription { x }", "variables": {"a": 1}, "operationName": "Sub"}
    } in ws_server.upgrade_headers


async def test_drop_mid_subscription_is_closed(ws_server: LiveServer) -> None:
    """A server that closes during a subscription ends it with WEBSOCKET_CLOSED."""
    results = await _results(ws_server.url, "drop")
    assert [r.error_code for r in results] == [ErrorCode.WEBSOCKET_CLOSED]


async def test_error_payload_as_string_is_graphql_error(ws_server: LiveServer) -> None:
    """An error message whose payload is not a list still gives GRAPHQL_ERROR."""
    results = await _results(ws_server.url, "error-str")
    assert [r.error_code for r in results] == [ErrorCode.GRAPHQL_ERROR]
    assert "no such thing" in (results[0].error or "")
