"""graphql-transport-ws edge cases against a scripted peer on the aiohttp test server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flext_api import ClientConfig, ErrorCode, FlextApiClient, FlextResult, TimeoutConfig
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


@pytest.mark.parametrize(
    ("query", "variables"),
    [("", None), (42, None), ("subscription { x }", [1]), ("subscription { x }", {"o": object()})],
)
async def test_bad_subscription_input_is_invalid_before_connecting(
    ws_server: LiveServer, query: Any, variables: Any
) -> None:
    """An empty or non-str document, or variables that are not a JSON-serializable dict,
    give one INVALID_REQUEST result and no connection is made."""
    async with FlextApiClient(ws_server.url) as http:
        gql = GraphQLClient(http, "/gqlws")
        results = [r async for r in gql.subscribe(query, variables)]
    assert [r.error_code for r in results] == [ErrorCode.INVALID_REQUEST]
    assert ws_server.connections == 0


async def test_error_payload_with_string_entries_is_graphql_error(ws_server: LiveServer) -> None:
    """An error message whose payload lists strings gives GRAPHQL_ERROR keeping each one."""
    results = await _results(ws_server.url, "error-list")
    assert [r.error_code for r in results] == [ErrorCode.GRAPHQL_ERROR]
    assert "boom; bad" in (results[0].error or "")


async def test_message_that_is_not_json_is_decode_error(ws_server: LiveServer) -> None:
    """A message that is not JSON ends the subscription with a DECODE_ERROR result."""
    results = await _results(ws_server.url, "not-json")
    assert [r.error_code for r in results] == [ErrorCode.DECODE_ERROR]


async def test_missing_ack_times_out(ws_server: LiveServer) -> None:
    """A server that never sends connection_ack gives READ_TIMEOUT after the client's
    connect timeout instead of waiting forever."""
    async with FlextApiClient(ws_server.url, timeout=TimeoutConfig(connect=0.2)) as http:
        gql = GraphQLClient(http, "/gqlws?mode=silent")
        results = await asyncio.wait_for(_collect(gql), 10)
    assert [r.error_code for r in results] == [ErrorCode.READ_TIMEOUT]


async def _collect(gql: GraphQLClient) -> list[FlextResult[dict[str, Any]]]:
    return [r async for r in gql.subscribe("subscription { x }")]


async def test_ack_wait_is_the_clients_connect_timeout(ws_server: LiveServer) -> None:
    """The wait for connection_ack is the client's ``timeout=`` connect timeout, not the
    config's (120 s here, which would outlive the test's bound)."""
    config = ClientConfig(timeout=TimeoutConfig(connect=120))
    fast = TimeoutConfig(connect=0.2)
    async with FlextApiClient(ws_server.url, config=config, timeout=fast) as http:
        gql = GraphQLClient(http, "/gqlws?mode=silent")
        results = await asyncio.wait_for(_collect(gql), 60)
    assert [r.error_code for r in results] == [ErrorCode.READ_TIMEOUT]


async def test_unanswered_upgrade_is_one_read_timeout(silent_url: str) -> None:
    """A server that never answers the upgrade gives one READ_TIMEOUT result (the
    subscription used to wait forever)."""
    config = ClientConfig(timeout=TimeoutConfig(connect=120, read=120))
    fast = TimeoutConfig(connect=0.5, read=0.5)
    async with FlextApiClient(silent_url, config=config, timeout=fast) as http:
        results = await asyncio.wait_for(_collect(GraphQLClient(http)), 60)
    assert [r.error_code for r in results] == [ErrorCode.READ_TIMEOUT]
