"""The factory's GraphQL mount against malformed, hostile and failing requests.

HTTP-level refusals are problem+json (strawberry answered them in plain text), JSON the
parser cannot hold is a 400 (not a 500), page sizes given as variables count toward
the cost limit, and unexpected resolver exceptions do not reach the client.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import strawberry
from graphql import GraphQLError

from flext_api import ErrorCode, FlextApiError, ServerConfig
from flext_api.server import GraphQLMount
from flext_api.server._problem import public_detail, status_for_error
from tests.server.helpers import build_app, problem, records, serve


@strawberry.type
class Item:
    name: str

    @strawberry.field
    def children(self, first: int = 1) -> list[Item]:
        return [Item(name=f"{self.name}.{n}") for n in range(min(first, 2))]


@strawberry.type
class Query:
    @strawberry.field
    def items(self, first: int = 1) -> list[Item]:
        return [Item(name=str(n)) for n in range(min(first, 2))]

    @strawberry.field
    def hello(self) -> str:
        return "hello"

    @strawberry.field
    def leaky(self) -> str | None:
        raise RuntimeError("connect to db-internal.corp:5432 failed for user svc")

    @strawberry.field
    def refused(self) -> str | None:
        raise GraphQLError("You may not see this.")

    @strawberry.field
    def bad_input(self) -> str | None:
        raise FlextApiError.from_code(ErrorCode.INVALID_REQUEST, "name is too long")

    @strawberry.field
    def upstream_down(self) -> str | None:
        raise FlextApiError.from_code(ErrorCode.CONNECT_ERROR, "db-internal.corp refused")


@strawberry.type
class Mutation:
    @strawberry.mutation
    def touch(self) -> int:
        return 1


SCHEMA = strawberry.Schema(query=Query, mutation=Mutation)
DEEP = "[" * 100_000 + "]" * 100_000


def _app(stream: io.StringIO | None = None, **limits: Any) -> Any:
    return build_app(
        ServerConfig(), stream=stream or io.StringIO(), graphql=GraphQLMount(SCHEMA, **limits)
    )


@pytest.mark.parametrize(
    ("limits", "method", "kwargs", "status", "detail"),
    [
        ({}, "POST", {"json": [{"query": "{ hello }"}]}, 400, "Batching is not enabled"),
        (
            {"max_batch": 2},
            "POST",
            {"json": [{"query": "{ hello }"}] * 3},
            400,
            "Too many operations",
        ),
        ({}, "POST", {"content": "{ hello }"}, 415, "Unsupported content type"),
        (
            {},
            "POST",
            {"content": "query=%7Bhello%7D", "headers": {"content-type": "text/plain"}},
            415,
            "Unsupported content type",
        ),
        (
            {},
            "POST",
            {"content": "{", "headers": {"content-type": "application/json"}},
            400,
            "Unable to parse request body as JSON",
        ),
        ({}, "POST", {"json": {"query": 5}}, 400, "`query` must be a string"),
        (
            {"allow_get": True},
            "GET",
            {"params": {"query": "mutation { touch }"}},
            400,
            "mutations are not allowed when using GET",
        ),
        ({}, "GET", {"params": {"query": "{ hello }"}}, 400, "not allowed when using GET"),
    ],
)
async def test_http_level_refusals_are_problem_json(
    limits: dict[str, Any], method: str, kwargs: dict[str, Any], status: int, detail: str
) -> None:
    """What strawberry refuses (batching, content type, bad JSON, GET) is a 4xx
    problem+json with the request ID, as on every other route (it was text/plain); a
    body that is not JSON is 415, as the GraphQL-over-HTTP spec and the factory's JSON
    routes answer (it was 400)."""
    async with serve(_app(**limits)) as client:
        response = await client.request(method, "/graphql", **kwargs)
    assert response.status_code == status
    body = problem(response)
    assert detail in body["detail"] and body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("POST", {"content": '{"query": "{ hello }", "variables": ' + DEEP + "}"}),
        ("POST", {"content": DEEP}),
        ("GET", {"params": {"query": "{ hello }", "variables": "[" * 5000 + "]" * 5000}}),
    ],
)
async def test_json_nested_too_deeply_is_400(method: str, kwargs: dict[str, Any]) -> None:
    """A body (or GET ``variables``) nested deeper than the JSON parser's recursion
    limit is a 400 problem: it was a RecursionError, answered 500 and logged as a crash."""
    stream = io.StringIO()
    headers = {"content-type": "application/json"}
    async with serve(_app(stream, allow_get=True)) as client:
        response = await client.request(method, "/graphql", headers=headers, **kwargs)
    assert response.status_code == 400
    assert problem(response)["detail"] == "Unable to parse request body as JSON"
    assert records(stream, "unhandled exception") == []


@pytest.mark.parametrize(
    ("limits", "body", "detail"),
    [
        ({}, "x", "must be a JSON object"),
        ({}, 5, "must be a JSON object"),
        ({"max_batch": 3}, [1], "must be a JSON object"),
        ({"max_batch": 3}, [{"query": "{ hello }"}, "x"], "must be a JSON object"),
        ({"max_batch": 3}, [[]], "must be a JSON object"),
        ({"max_batch": 3}, [{"query": 5}], "`query` must be a string"),
        ({"max_batch": 3}, [{"query": "{ hello }", "variables": [1]}], "`variables` must be"),
        ({"max_batch": 3}, [{"query": "{ hello }", "extensions": 1}], "`extensions` must be"),
        ({}, {"query": "{ hello }", "operationName": 5}, "`operationName` must be a string"),
    ],
)
async def test_request_that_is_not_operations_is_400(
    limits: dict[str, Any], body: Any, detail: str
) -> None:
    """A body that is not an object (or a list of objects when batching), and a batched
    operation with members of the wrong type, are 400 problems (they were 500s)."""
    stream = io.StringIO()
    async with serve(_app(stream, **limits)) as client:
        response = await client.post("/graphql", json=body)
    assert response.status_code == 400
    assert detail in problem(response)["detail"]
    assert records(stream, "unhandled exception") == []


async def _graphql(app: Any, query: str, variables: dict[str, Any] | None = None) -> Any:
    async with serve(app) as client:
        response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("query($n: Int!) { items(first: $n) { children(first: $n) { name } } }", {"n": 10**6}),
        ("query($n: Int!) { items(first: $n) { name name } }", {"n": 1e6}),
        ("query($n: Int = 100000) { items(first: $n) { name name } }", None),
        ("query($n: Int = 1) { items(first: $n) { name name } }", {"n": 10**6}),
    ],
)
async def test_page_size_in_a_variable_counts_toward_the_cost(
    query: str, variables: dict[str, Any] | None
) -> None:
    """``first: $n`` multiplies like ``first: 1000000`` (its value, else its default):
    a variable used to count as 1, which let any fan-out through the cost limit."""
    body = await _graphql(_app(max_cost=100), query, variables)
    assert body["data"] is None
    assert "estimated cost" in body["errors"][0]["message"]


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "-5", "1.5", "12"])
async def test_a_page_size_variable_that_is_not_an_int_gets_the_type_error(value: str) -> None:
    """A string for ``Int!`` is refused by GraphQL's own type check. Before, a string of
    other digits (``"²"``) broke the cost count instead, and its ``int()`` error went to
    the client."""
    query = "query($n: Int!) { items(first: $n) { name } }"
    body = await _graphql(_app(max_cost=100), query, {"n": value})
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"].startswith("Variable '$n' has invalid value: Int cannot represent")


async def test_small_page_size_in_a_variable_runs() -> None:
    """A variable page size within the budget runs."""
    query = "query($n: Int!) { items(first: $n) { children(first: $n) { name } } }"
    body = await _graphql(_app(max_cost=100), query, {"n": 2})
    assert body == {
        "data": {
            "items": [
                {"children": [{"name": "0.0"}, {"name": "0.1"}]},
                {"children": [{"name": "1.0"}, {"name": "1.1"}]},
            ]
        }
    }


async def test_unexpected_resolver_error_is_masked_and_logged() -> None:
    """An exception's message (internal hosts, users) is not sent; the client gets
    "Unexpected error." and the log has the traceback with the request ID."""
    stream = io.StringIO()
    async with serve(_app(stream)) as client:
        response = await client.post("/graphql", json={"query": "{ hello leaky }"})
    body = response.json()
    assert body["data"] == {"hello": "hello", "leaky": None}
    assert [e["message"] for e in body["errors"]] == ["Unexpected error."]
    assert body["errors"][0]["path"] == ["leaky"]
    assert "db-internal" not in response.text
    logged = records(stream, "graphql resolver error")
    assert len(logged) == 1 and "db-internal.corp" in logged[0]["exception"]
    assert logged[0]["request_id"] == response.headers["x-request-id"]


async def test_errors_meant_for_the_client_keep_their_message() -> None:
    """A GraphQLError is sent as raised; a FlextApiError as a REST route would show it:
    a 4xx's message, a 5xx's generic sentence (never the upstream host)."""
    body = await _graphql(_app(), "{ refused badInput upstreamDown }")
    messages = {e["path"][0]: e["message"] for e in body["errors"]}
    assert messages["refused"] == "You may not see this."
    assert messages["badInput"] == "name is too long"
    down = FlextApiError.from_code(ErrorCode.CONNECT_ERROR, "db-internal.corp refused")
    assert messages["upstreamDown"] == public_detail(down, status_for_error(down))
    assert "db-internal" not in json.dumps(body)


async def test_document_errors_are_not_masked() -> None:
    """Parse and validation errors describe the document: they are sent as they are."""
    body = await _graphql(_app(), "{ nope }")
    assert body["errors"][0]["message"].startswith("Cannot query field 'nope'")


async def test_graphiql_page_may_load_its_scripts() -> None:
    """With introspection on, the GraphiQL page gets a CSP allowing what it loads (its
    inline script and unpkg.com): under the factory's ``default-src 'none'`` it was
    blank. Other routes keep the factory's policy."""
    async with serve(_app(introspection=True)) as client:
        page = await client.get("/graphql", headers={"accept": "text/html"})
        other = await client.get("/health")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = {
        name: value
        for name, _, value in (
            part.partition(" ") for part in page.headers["content-security-policy"].split("; ")
        )
    }
    scripts = re.findall(r'<script[^>]*\ssrc="([^"]+)"', page.text)
    styles = re.findall(r'<link[^>]*\shref="([^"]+\.css)"', page.text)
    assert scripts and styles and "<script>" in page.text
    assert "'unsafe-inline'" in policy["script-src"]
    for url in scripts:
        assert _origin(url) in policy["script-src"].split(), url
    for url in styles:
        assert _origin(url) in policy["style-src"].split(), url
    assert policy["frame-ancestors"] == "'none'"
    assert other.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


_TOUCHED: list[int] = []


@strawberry.type
class CountingMutation:
    @strawberry.mutation
    def touch(self) -> int:
        _TOUCHED.append(1)
        return len(_TOUCHED)


@pytest.mark.parametrize(
    "document",
    ["mutation M { touch } query Q { hello }", "query Q { hello } mutation M { touch }"],
)
async def test_several_operations_without_a_name_are_a_request_error(document: str) -> None:
    """The GraphQL spec's GetOperation: several operations and no ``operationName`` is an
    error, and none of them runs (strawberry ran the first, a mutation included); named,
    the chosen one runs."""
    schema = strawberry.Schema(query=Query, mutation=CountingMutation)
    app = build_app(ServerConfig(), stream=io.StringIO(), graphql=GraphQLMount(schema))
    _TOUCHED.clear()
    async with serve(app) as client:
        refused = await client.post("/graphql", json={"query": document})
        named = await client.post("/graphql", json={"query": document, "operationName": "M"})
        other = await client.post("/graphql", json={"query": document, "operationName": "Q"})
    assert refused.status_code == 200 and refused.json()["data"] is None
    [error] = refused.json()["errors"]
    assert error["message"] == (
        "Must provide operation name if query contains multiple operations."
    )
    assert named.json() == {"data": {"touch": 1}}
    assert other.json() == {"data": {"hello": "hello"}}
    assert _TOUCHED == [1]  # the named mutation, once; never the unnamed request's
