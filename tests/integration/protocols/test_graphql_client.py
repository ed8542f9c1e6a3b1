"""``GraphQLClient`` against a strawberry app served by uvicorn on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest

from flext_api import ErrorCode, FlextApiClient
from flext_api.protocols import GraphQLClient, GraphQLError

from .conftest import GraphQLServer

pytestmark = pytest.mark.integration


async def test_query_with_variables(gql_server: GraphQLServer) -> None:
    """A query with variables returns its data."""
    async with FlextApiClient(gql_server.url) as http:
        result = await GraphQLClient(http).query(
            "query Q($id: Int!) { user(id: $id) { name } }", {"id": 1}, operation_name="Q"
        )
    assert result.value == {"user": {"name": "ada"}}


async def test_mutation(gql_server: GraphQLServer) -> None:
    """A mutation runs and returns its data."""
    async with FlextApiClient(gql_server.url) as http:
        result = await GraphQLClient(http).mutate(
            "mutation($n: String!) { createUser(name: $n) { id name } }", {"n": "linus"}
        )
    assert result.value == {"createUser": {"id": 3, "name": "linus"}}


async def test_errors_keep_partial_data_and_paths(gql_server: GraphQLServer) -> None:
    """A response with errors fails with GRAPHQL_ERROR, keeping partial data and paths."""
    async with FlextApiClient(gql_server.url) as http:
        result = await GraphQLClient(http).query("{ hello broken }")
    err = result.exception
    assert result.error_code is ErrorCode.GRAPHQL_ERROR and isinstance(err, GraphQLError)
    assert (err.data, err.paths) == ({"hello": "hello world", "broken": None}, [["broken"]])


async def test_validation_error_is_graphql_error(gql_server: GraphQLServer) -> None:
    """A document the schema rejects is a GRAPHQL_ERROR naming the field."""
    async with FlextApiClient(gql_server.url) as http:
        result = await GraphQLClient(http).query("{ nope }")
    assert result.error_code is ErrorCode.GRAPHQL_ERROR and "nope" in (result.error or "")


async def test_empty_document_is_invalid(gql_server: GraphQLServer) -> None:
    """An empty document is refused before anything is sent."""
    async with FlextApiClient(gql_server.url) as http:
        result = await GraphQLClient(http).query("  ")
    assert result.error_code is ErrorCode.INVALID_REQUEST


async def test_bad_variables_are_invalid(gql_server: GraphQLServer) -> None:
    """Variables that are not a dict are refused before anything is sent."""
    async with FlextApiClient(gql_server.url) as http:
        result = await GraphQLClient(http).query("{ hello }", [1])  # type: ignore[arg-type]
    assert result.error_code is ErrorCode.INVALID_REQUEST


async def test_query_is_retried(gql_server: GraphQLServer) -> None:
    """A query answered 503 is retried like an idempotent request."""
    async with FlextApiClient(gql_server.url) as http:
        result = await GraphQLClient(http, "/flaky").query("{ hello }")
    assert result.value == {"hello": "hello world"}


async def test_mutation_is_not_retried_after_server_error(gql_server: GraphQLServer) -> None:
    """A mutation answered 503 is not replayed: it fails with HTTP_STATUS."""
    gql_server.counts["flaky"] = 0
    async with FlextApiClient(gql_server.url) as http:
        result = await GraphQLClient(http, "/flaky").mutate(
            'mutation { createUser(name: "x") { id } }'
        )
    assert result.error_code is ErrorCode.HTTP_STATUS and gql_server.counts["flaky"] == 1


async def test_mutation_with_idempotency_key_is_retried(gql_server: GraphQLServer) -> None:
    """A mutation with an idempotency key is replayed after a 503."""
    gql_server.counts["flaky"] = 0
    async with FlextApiClient(gql_server.url) as http:
        result = await GraphQLClient(http, "/flaky").mutate(
            'mutation { createUser(name: "x") { name } }', idempotency_key="k-1"
        )
    assert result.value == {"createUser": {"name": "x"}}


async def test_persisted_query_registers_then_uses_hash(gql_server: GraphQLServer) -> None:
    """APQ: an unknown hash is followed by the full query; the next call sends the hash only."""
    gql_server.counts["apq_posts"] = 0
    async with FlextApiClient(gql_server.url) as http:
        gql = GraphQLClient(http, "/apq", persisted_queries=True)
        first = await gql.query('query { hello(name: "apq") }')
        second = await gql.query('query { hello(name: "apq") }')
    assert first.value == second.value == {"hello": "hello apq"}
    assert gql_server.counts["apq_posts"] == 3


async def test_subscription_yields_each_result(gql_server: GraphQLServer) -> None:
    """A subscription over graphql-transport-ws yields every result, then ends."""
    async with FlextApiClient(gql_server.url) as http:
        gql = GraphQLClient(http)
        seen: list[Any] = [r.value async for r in gql.subscribe("subscription { ticks(count: 3) }")]
    assert seen == [{"ticks": 0}, {"ticks": 1}, {"ticks": 2}]


async def test_subscription_error_is_a_failed_result(gql_server: GraphQLServer) -> None:
    """An error inside a subscription arrives as a GRAPHQL_ERROR result."""
    async with FlextApiClient(gql_server.url) as http:
        results = [r async for r in GraphQLClient(http).subscribe("subscription { failing }")]
    assert results[0].value == {"failing": 1}
    assert results[-1].error_code is ErrorCode.GRAPHQL_ERROR


async def test_subscription_can_stop_early(gql_server: GraphQLServer) -> None:
    """Breaking out of a subscription completes it and closes the socket."""
    async with FlextApiClient(gql_server.url) as http:
        stream = GraphQLClient(http).subscribe("subscription { ticks(count: 100) }")
        async for result in stream:
            assert result.value == {"ticks": 0}
            break
        await stream.aclose()


SDL = """
type User { id: Int! name: String! }
type Query { user(id: Int!): User hello(name: String): String! }
"""


async def test_schema_validation_refuses_before_sending(gql_server: GraphQLServer) -> None:
    """With a schema, an invalid document fails INVALID_REQUEST and nothing is sent."""
    async with FlextApiClient(gql_server.url) as http:
        gql = GraphQLClient(http, "/flaky", schema=SDL)
        before = gql_server.counts.get("flaky", 0)
        result = await gql.query("{ user(id: 1) { email } }")
    assert result.error_code is ErrorCode.INVALID_REQUEST and "email" in (result.error or "")
    assert gql_server.counts.get("flaky", 0) == before


async def test_schema_validation_passes_valid_document(gql_server: GraphQLServer) -> None:
    """A document valid for the schema is sent (twice: the verdict is cached)."""
    async with FlextApiClient(gql_server.url) as http:
        gql = GraphQLClient(http, schema=SDL)
        first = await gql.query("{ user(id: 1) { name } }")
        second = await gql.query("{ user(id: 1) { name } }")
    assert first.value == second.value == {"user": {"name": "ada"}}


async def test_schema_validation_reports_syntax_errors(gql_server: GraphQLServer) -> None:
    """A document that does not parse fails INVALID_REQUEST."""
    async with FlextApiClient(gql_server.url) as http:
        result = await GraphQLClient(http, schema=SDL).query("{ user(id: 1) { name }")
    assert result.error_code is ErrorCode.INVALID_REQUEST


def test_bad_schema_is_config_error() -> None:
    """Schema text that is not SDL is a CONFIG_ERROR when the client is made."""
    from flext_api import FlextApiError

    with pytest.raises(FlextApiError) as info:
        GraphQLClient(FlextApiClient("http://127.0.0.1:1"), schema="type {")
    assert info.value.code is ErrorCode.CONFIG_ERROR
