"""The built-in protocols run requests through the registry against real servers."""

from __future__ import annotations

import pytest

from flext_api import ErrorCode
from flext_api.protocols import (
    FlextWebProtocol,
    GraphQLProtocol,
    GraphQLRequest,
    ProtocolRegistry,
    SSEProtocol,
    SSERequest,
    WebSocketMessage,
    WebSocketProtocol,
    WebSocketRequest,
)

from .conftest import GraphQLServer, LiveServer

pytestmark = pytest.mark.integration


async def test_http_protocol_sends_request(sse_server: LiveServer) -> None:
    """The http protocol sends an HttpRequest through its client."""
    registry = ProtocolRegistry()
    client = registry.create_client({"base_url": sse_server.url}).value
    request = client.build_request("GET", "/done")
    registry.register("http", FlextWebProtocol(client=client))
    result = await registry.execute("http", request)
    await client.aclose()
    assert result.value.status_code == 204


async def test_graphql_protocol_runs_query(gql_server: GraphQLServer) -> None:
    """The graphql protocol runs a GraphQLRequest."""
    registry = ProtocolRegistry()
    registry.register("graphql", GraphQLProtocol(base_url=gql_server.url))
    result = await registry.execute("graphql", GraphQLRequest("{ hello }"))
    await registry.get_protocol("graphql").aclose()
    assert result.value == {"hello": "hello world"}


async def test_graphql_protocol_runs_mutation(gql_server: GraphQLServer) -> None:
    """The graphql protocol runs a mutation when asked."""
    registry = ProtocolRegistry()
    registry.register("graphql", GraphQLProtocol(base_url=gql_server.url))
    request = GraphQLRequest('mutation { createUser(name: "m") { name } }', kind="mutation")
    result = await registry.execute("graphql", request)
    await registry.get_protocol("graphql").aclose()
    assert result.value == {"createUser": {"name": "m"}}


async def test_websocket_protocol_request_reply(ws_server: LiveServer) -> None:
    """The websocket protocol sends one message and returns the reply."""
    registry = ProtocolRegistry()
    proto = WebSocketProtocol(base_url=ws_server.url)
    registry.register("websocket", proto)
    result = await registry.execute("websocket", WebSocketRequest("/ws", {"type": "echo"}))
    assert result.value == WebSocketMessage("text", '{"type":"echo"}')


async def test_websocket_protocol_bytes(ws_server: LiveServer) -> None:
    """The websocket protocol sends bytes as a binary message."""
    proto = WebSocketProtocol(base_url=ws_server.url)
    result = await proto.execute_request(WebSocketRequest("/ws", b"\x01"))
    assert result.value == WebSocketMessage("bytes", b"\x01")


async def test_websocket_protocol_connect_failure(ws_server: LiveServer) -> None:
    """A refused upgrade is the protocol's failed result."""
    proto = WebSocketProtocol(base_url=ws_server.url)
    result = await proto.execute_request(WebSocketRequest("/private", "x"))
    assert result.error_code is ErrorCode.HTTP_STATUS


async def test_sse_protocol_collects_events(sse_server: LiveServer) -> None:
    """The sse protocol collects the requested number of events."""
    proto = SSEProtocol(base_url=sse_server.url)
    result = await proto.execute_request(SSERequest("/events", max_events=4))
    await proto.aclose()
    assert [e.data for e in result.value] == ["1", "2", "3", "4"]


async def test_sse_protocol_failure_is_result(sse_server: LiveServer) -> None:
    """A stream that cannot be read is the protocol's failed result."""
    proto = SSEProtocol(base_url=sse_server.url)
    result = await proto.execute_request(SSERequest("/json"))
    await proto.aclose()
    assert result.error_code is ErrorCode.PROTOCOL_ERROR


async def test_sse_protocol_gives_up_after_its_timeout(sse_server: LiveServer) -> None:
    """A stream that goes silent: READ_TIMEOUT after ``timeout``, the events kept."""
    proto = SSEProtocol(base_url=sse_server.url)
    result = await proto.execute_request(SSERequest("/events?stall=1", max_events=5, timeout=0.5))
    await proto.aclose()
    assert result.error_code is ErrorCode.READ_TIMEOUT
    assert result.exception is not None
    assert [e.data for e in result.exception.details["events"]] == ["1", "2", "3"]
