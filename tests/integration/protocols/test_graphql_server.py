"""``create_fastapi_app(graphql=...)``: strawberry behind the factory, served by uvicorn."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import jwt
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from flext_api import ErrorCode, FlextApiClient, FlextApiError
from flext_api.protocols import GraphQLClient, GraphQLError
from flext_api.server import AuthConfig, GraphQLMount, ServerConfig, create_fastapi_app
from tests.server.live import LiveServer

from .graphql_app import schema

pytestmark = pytest.mark.integration

KEY = {"X-API-Key": "sesame"}
AUTH = ServerConfig(auth=AuthConfig(api_keys={"svc": SecretStr("sesame")}))


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    servers: list[LiveServer] = []

    def start(graphql: Any, config: ServerConfig = AUTH) -> str:
        app: FastAPI = create_fastapi_app(config, graphql=graphql)
        server = LiveServer(app)
        servers.append(server)
        return server.start().url

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


async def _query(url: str, document: str, headers: dict[str, str] | None = KEY) -> Any:
    async with FlextApiClient(url) as http:
        return await GraphQLClient(http, headers=headers).query(document)


async def test_query_with_api_key(serve: Callable[..., str]) -> None:
    """An authenticated query returns its data."""
    result = await _query(serve(schema), "{ user(id: 2) { name } }")
    assert result.value == {"user": {"name": "grace"}}


async def test_query_without_credentials_is_401_problem(serve: Callable[..., str]) -> None:
    """Without credentials the endpoint answers 401 problem+json."""
    url = serve(schema)
    async with FlextApiClient(url) as http:
        result = await http.post("/graphql", json={"query": "{ hello }"})
    response = result.exception.response if result.exception else None
    assert result.error_code is ErrorCode.HTTP_STATUS and response is not None
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_response_carries_request_id(serve: Callable[..., str]) -> None:
    """GraphQL responses carry the factory's X-Request-ID."""
    url = serve(schema)
    async with FlextApiClient(url) as http:
        result = await http.post("/graphql", json={"query": "{ hello }"}, headers=KEY)
    assert result.value.headers.get("x-request-id")


async def test_persisted_queries_fall_back_to_the_document(serve: Callable[..., str]) -> None:
    """The factory's strawberry mount has no APQ and answers a hash-only request 400: the
    client sends the document instead (it used to fail HTTP_STATUS), then documents only."""
    url = serve(schema)
    async with FlextApiClient(url) as http:
        gql = GraphQLClient(http, headers=KEY, persisted_queries=True)
        first = await gql.query("query($id: Int!) { user(id: $id) { name } }", {"id": 1})
        second = await gql.query("{ hello }")
        requests = http.stats()["requests"]
    assert first.value == {"user": {"name": "ada"}} and second.value == {"hello": "hello world"}
    assert requests == 3  # the hash once, then each document


async def test_open_when_app_has_no_auth(serve: Callable[..., str]) -> None:
    """An app without any credential configured serves GraphQL openly."""
    result = await _query(serve(schema, ServerConfig()), "{ hello }", headers=None)
    assert result.value == {"hello": "hello world"}


async def test_depth_limit_refuses_deep_query(serve: Callable[..., str]) -> None:
    """A query deeper than max_depth fails with GRAPHQL_ERROR naming the depth."""
    url = serve(GraphQLMount(schema, max_depth=3))
    deep = "{ users { friends { friends { friends { name } } } } }"
    result = await _query(url, deep)
    assert result.error_code is ErrorCode.GRAPHQL_ERROR and "depth" in (result.error or "")


async def test_depth_limit_follows_fragments(serve: Callable[..., str]) -> None:
    """Depth hidden in a fragment counts too."""
    url = serve(GraphQLMount(schema, max_depth=3))
    doc = "{ users { ...F } } fragment F on User { friends { friends { friends { name } } } }"
    result = await _query(url, doc)
    assert result.error_code is ErrorCode.GRAPHQL_ERROR


async def test_query_within_depth_passes(serve: Callable[..., str]) -> None:
    """A query within max_depth runs."""
    url = serve(GraphQLMount(schema, max_depth=3))
    result = await _query(url, "{ users(first: 1) { friends(first: 1) { name } } }")
    assert result.value == {"users": [{"friends": [{"name": "ada"}]}]}


async def test_cost_limit_refuses_fan_out(serve: Callable[..., str]) -> None:
    """Multiplying page sizes beyond max_cost is refused before execution."""
    url = serve(GraphQLMount(schema, max_cost=500))
    doc = "{ users(first: 50) { friends(first: 50) { name } } }"
    result = await _query(url, doc)
    assert result.error_code is ErrorCode.GRAPHQL_ERROR and "cost" in (result.error or "")


async def test_cost_limit_sees_inline_fragments(serve: Callable[..., str]) -> None:
    """Fan-out inside an inline fragment counts toward the cost."""
    url = serve(GraphQLMount(schema, max_cost=500))
    doc = "{ users(first: 50) { ... on User { friends(first: 50) { name } } } }"
    result = await _query(url, doc)
    assert result.error_code is ErrorCode.GRAPHQL_ERROR and "cost" in (result.error or "")


async def test_fragment_cycle_is_refused_without_hanging(serve: Callable[..., str]) -> None:
    """Cyclic fragments are a validation error; the cost rule does not loop on them."""
    url = serve(GraphQLMount(schema, max_depth=50))
    doc = (
        "{ users { ...A } } fragment A on User { friends { ...B } } "
        "fragment B on User { friends { ...A } }"
    )
    result = await _query(url, doc)
    assert result.error_code is ErrorCode.GRAPHQL_ERROR


async def test_alias_limit_refuses_many_aliases(serve: Callable[..., str]) -> None:
    """More aliases than max_aliases are refused."""
    url = serve(GraphQLMount(schema, max_aliases=2))
    result = await _query(url, "{ a: hello b: hello c: hello }")
    assert result.error_code is ErrorCode.GRAPHQL_ERROR


async def test_introspection_is_off_by_default(serve: Callable[..., str]) -> None:
    """__schema queries are refused unless introspection is enabled."""
    result = await _query(serve(schema), "{ __schema { queryType { name } } }")
    assert result.error_code is ErrorCode.GRAPHQL_ERROR
    assert isinstance(result.exception, GraphQLError)


async def test_typename_works_without_introspection(serve: Callable[..., str]) -> None:
    """__typename is not introspection and keeps working."""
    result = await _query(serve(schema), "{ __typename }")
    assert result.value == {"__typename": "Query"}


async def test_introspection_when_enabled(serve: Callable[..., str]) -> None:
    """introspection=True allows __schema."""
    url = serve(GraphQLMount(schema, introspection=True))
    result = await _query(url, "{ __schema { queryType { name } } }")
    assert result.value == {"__schema": {"queryType": {"name": "Query"}}}


async def test_batching_is_off_by_default(serve: Callable[..., str]) -> None:
    """A batched request is refused with 400 when batching is off."""
    url = serve(schema)
    async with FlextApiClient(url) as http:
        result = await http.post(
            "/graphql", json=[{"query": "{ hello }"}, {"query": "{ hello }"}], headers=KEY
        )
    assert result.exception is not None and result.exception.response is not None
    assert result.exception.response.status_code == 400


async def test_batch_within_bound_runs(serve: Callable[..., str]) -> None:
    """Up to max_batch operations run in one request."""
    url = serve(GraphQLMount(schema, max_batch=2))
    async with FlextApiClient(url) as http:
        result = await http.post(
            "/graphql", json=[{"query": "{ hello }"}, {"query": "{ hello }"}], headers=KEY
        )
    assert result.value.json() == [{"data": {"hello": "hello world"}}] * 2


async def test_batch_above_bound_is_refused(serve: Callable[..., str]) -> None:
    """More than max_batch operations are refused with 400."""
    url = serve(GraphQLMount(schema, max_batch=2))
    async with FlextApiClient(url) as http:
        result = await http.post("/graphql", json=[{"query": "{ hello }"}] * 3, headers=KEY)
    assert result.exception is not None and result.exception.response is not None
    assert result.exception.response.status_code == 400


async def test_get_queries_are_off(serve: Callable[..., str]) -> None:
    """Queries sent with GET are refused unless allow_get."""
    url = serve(schema)
    async with FlextApiClient(url) as http:
        result = await http.get("/graphql", params={"query": "{ hello }"}, headers=KEY)
    assert result.is_failure and result.exception is not None
    assert result.exception.response is not None
    assert result.exception.response.status_code == 400


async def test_subscription_with_api_key(serve: Callable[..., str]) -> None:
    """An authenticated subscription over WebSocket yields every result."""
    url = serve(schema)
    async with FlextApiClient(url) as http:
        gql = GraphQLClient(http, headers=KEY)
        seen = [r.value async for r in gql.subscribe("subscription { ticks(count: 2) }")]
    assert seen == [{"ticks": 0}, {"ticks": 1}]


async def test_subscription_without_credentials_is_refused(serve: Callable[..., str]) -> None:
    """Without credentials the subscription's upgrade is refused."""
    url = serve(schema)
    async with FlextApiClient(url) as http:
        results = [r async for r in GraphQLClient(http).subscribe("subscription { ticks }")]
    assert len(results) == 1 and results[0].is_failure


def test_user_schema_is_not_modified() -> None:
    """Mounting leaves the user's schema without the factory's extensions."""
    before = schema.extensions
    create_fastapi_app(AUTH, graphql=GraphQLMount(schema, max_depth=2))
    assert schema.extensions == before and schema.config.batching_config is None


@pytest.mark.parametrize("field", ["max_depth", "max_cost", "max_batch"])
def test_nonpositive_limit_is_config_error(field: str) -> None:
    """A limit below 1 is refused when the app is built."""
    limits: dict[str, Any] = {field: 0}
    with pytest.raises(FlextApiError) as info:
        create_fastapi_app(AUTH, graphql=GraphQLMount(schema, **limits))
    assert info.value.code is ErrorCode.CONFIG_ERROR and field in info.value.message


# -- a WebSocket does not outlive its JWT ---------------------------------------------------
SECRET = "s" * 32
JWT_AUTH = ServerConfig(auth=AuthConfig(jwt_secret=SecretStr(SECRET), jwt_leeway=0))


def _bearer(exp: float) -> dict[str, str]:
    token = jwt.encode({"sub": "alice", "exp": int(exp)}, SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


async def _subscribe_raw(url: str, headers: dict[str, str], document: str) -> Any:
    """Open a graphql-transport-ws socket, subscribe, return (socket, session)."""
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(
        url.replace("http", "ws", 1) + "/graphql",
        headers=headers,
        protocols=("graphql-transport-ws",),
    )
    await ws.send_json({"type": "connection_init", "payload": {}})
    assert (await ws.receive_json())["type"] == "connection_ack"
    await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": document}})
    return ws, session


async def test_subscription_is_closed_when_its_token_expires(serve: Callable[..., str]) -> None:
    """At the token's exp the server closes the socket with 4403; nothing comes after."""
    url = serve(schema, JWT_AUTH)
    exp = int(time.time()) + 2
    ws, session = await _subscribe_raw(url, _bearer(exp), "subscription { beats }")
    try:
        beats = []
        async with asyncio.timeout(30):
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                payload = json.loads(message.data)
                assert payload["type"] == "next", payload
                beats.append(payload["payload"]["data"]["beats"])
        assert ws.close_code == 4403
        assert time.time() >= exp  # not before the token expired (same clock, leeway 0)
        assert beats and beats == list(range(len(beats)))  # events flowed until then
    finally:
        await ws.close()
        await session.close()


async def test_operation_after_expiry_is_not_run(serve: Callable[..., str]) -> None:
    """A socket whose token has expired runs nothing more: it is closed instead."""
    url = serve(schema, JWT_AUTH)
    exp = int(time.time()) + 2
    ws, session = await _subscribe_raw(url, _bearer(exp), "subscription { ticks(count: 1) }")
    try:
        first = await ws.receive_json()
        assert first["type"] == "next" and first["payload"]["data"] == {"ticks": 0}
        assert (await ws.receive_json())["type"] == "complete"
        # Quiet until the token expires; then the close comes without a message sent.
        closing = await ws.receive(timeout=30)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 4403
    finally:
        await ws.close()
        await session.close()


async def test_library_client_sees_the_expiry_as_a_failed_result(
    serve: Callable[..., str],
) -> None:
    """GraphQLClient.subscribe ends with one failed result when the server closes at exp."""
    url = serve(schema, JWT_AUTH)
    headers = _bearer(time.time() + 2)
    async with FlextApiClient(url) as http:
        gql = GraphQLClient(http, headers=headers)
        results = []
        async with asyncio.timeout(30):
            async for result in gql.subscribe("subscription { beats }"):
                results.append(result)
    assert results[-1].is_failure
    assert all(r.is_success for r in results[:-1]) and len(results) > 1


async def test_api_key_socket_is_not_closed_by_expiry(serve: Callable[..., str]) -> None:
    """Only a JWT expires: an API-key subscription runs to its end."""
    url = serve(schema, ServerConfig(auth=AuthConfig(
        jwt_secret=SecretStr(SECRET), api_keys={"svc": SecretStr("sesame")})))  # fmt: skip
    async with FlextApiClient(url) as http:
        gql = GraphQLClient(http, headers=KEY)
        seen = [r.value async for r in gql.subscribe("subscription { ticks(count: 3) }")]
    assert seen == [{"ticks": 0}, {"ticks": 1}, {"ticks": 2}]
