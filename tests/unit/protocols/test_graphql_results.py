"""GraphQL result parsing: data, errors, and bodies that are not GraphQL."""

from __future__ import annotations

import orjson
import pytest

from flext_api import ErrorCode, FlextApiClient, HttpRequest, HttpResponse
from flext_api.protocols import GraphQLClient, GraphQLError
from flext_api.protocols._graphql import parse_response, result_of
from flext_api.transports._mock import MockTransport


def _response(status: int, body: bytes) -> HttpResponse:
    return HttpResponse(
        status,
        headers={"Content-Type": "application/json"},
        content=body,
        request=HttpRequest("POST", "http://127.0.0.1:1/graphql"),
    )


def test_non_json_error_status_is_http_status() -> None:
    """A non-JSON body with status >= 400 is HTTP_STATUS."""
    assert parse_response(_response(502, b"<html>")).error_code is ErrorCode.HTTP_STATUS


def test_non_json_success_is_decode_error() -> None:
    """A non-JSON 200 body is DECODE_ERROR."""
    assert parse_response(_response(200, b"<html>")).error_code is ErrorCode.DECODE_ERROR


def test_json_without_data_or_errors_on_error_status() -> None:
    """A JSON body that is not a GraphQL result, with status >= 400, is HTTP_STATUS."""
    result = parse_response(_response(503, b'{"error": "down"}'))
    assert result.error_code is ErrorCode.HTTP_STATUS


@pytest.mark.parametrize("status", [400, 500, 503])
def test_data_without_errors_on_error_status_is_http_status(status: int) -> None:
    """Data with no errors under a status >= 400 is HTTP_STATUS, not a success (GraphQL
    over HTTP sends data with a 2xx; a failing status must not pass for a result)."""
    result = parse_response(_response(status, b'{"data": {"a": 1}}'))
    assert result.error_code is ErrorCode.HTTP_STATUS


def test_json_without_data_or_errors_is_decode_error() -> None:
    """A JSON 200 body that is not a GraphQL result is DECODE_ERROR."""
    assert result_of({"x": 1}).error_code is ErrorCode.DECODE_ERROR


def test_errors_object_is_wrapped_in_list() -> None:
    """A single errors object (not a list) and plain-string errors are kept."""
    err = result_of({"errors": "boom"}).exception
    assert isinstance(err, GraphQLError) and err.errors == [{"message": "boom"}]


def test_many_errors_are_summarised() -> None:
    """The message names the first three errors and counts the rest."""
    errors = [{"message": f"e{n}"} for n in range(5)]
    err = result_of({"errors": errors}).exception
    assert err is not None and err.message == "GraphQL errors: e0; e1; e2 (+2 more)"


@pytest.mark.parametrize(
    "body", [{"data": None}, {"data": None, "errors": None}, {"data": None, "errors": []}]
)
def test_null_data_without_errors_is_decode_error(body: dict[str, object]) -> None:
    """Null data comes from an error that reached the root, and the spec says such
    errors are listed: null data with no errors is not a GraphQL result (it used to be
    a success holding {})."""
    assert result_of(body).error_code is ErrorCode.DECODE_ERROR


def test_repr_names_endpoint_and_persisted_mode() -> None:
    """The repr shows the endpoint and whether APQ is on."""
    client = FlextApiClient("http://127.0.0.1:1")
    gql = GraphQLClient(client, "/gql", persisted_queries=True)
    assert repr(gql).startswith("<GraphQLClient /gql persisted via <FlextApiClient")


def test_data_that_is_not_an_object_is_decode_error() -> None:
    """A `data` that is a list or a string is DECODE_ERROR, not an empty result."""
    for data in ([1, 2], "x", 3):
        assert result_of({"data": data}).error_code is ErrorCode.DECODE_ERROR


def test_empty_errors_without_data_is_decode_error() -> None:
    """`{"errors": []}` carries neither data nor errors: DECODE_ERROR."""
    assert result_of({"errors": []}).error_code is ErrorCode.DECODE_ERROR


def _apq_client(body: bytes) -> tuple[GraphQLClient, MockTransport]:
    transport = MockTransport(lambda req: HttpResponse(200, content=body))
    http = FlextApiClient("http://api.test", transport=transport, default_plugins=False)
    return GraphQLClient(http, persisted_queries=True), transport


async def test_apq_error_with_unhashable_message_is_graphql_error() -> None:
    """An error whose message or code is a list is a GRAPHQL_ERROR, not a TypeError."""
    body = b'{"errors": [{"message": ["x"], "extensions": {"code": {"a": 1}}}]}'
    gql, transport = _apq_client(body)
    result = await gql.query("{ a }")
    assert result.error_code is ErrorCode.GRAPHQL_ERROR and len(transport.requests) == 1


async def test_document_with_lone_surrogate_is_invalid_request() -> None:
    """A document that is not valid Unicode is INVALID_REQUEST, also with APQ; nothing
    is sent."""
    gql, transport = _apq_client(b'{"data": {}}')
    result = await gql.query("{ a \ud800 }")
    assert result.error_code is ErrorCode.INVALID_REQUEST and transport.requests == []


async def test_operation_name_not_str_is_invalid_request() -> None:
    """An operation name that is not a str is INVALID_REQUEST; nothing is sent."""
    gql, transport = _apq_client(b'{"data": {}}')
    result = await gql.query("query A { a }", operation_name=5)  # type: ignore[arg-type]
    assert result.error_code is ErrorCode.INVALID_REQUEST and transport.requests == []


async def test_apq_not_supported_sends_the_document_and_stops_hashing() -> None:
    """PersistedQueryNotSupported: the document goes at once (no APQ extension), and
    later operations of this client send documents only."""

    def server(request: HttpRequest) -> HttpResponse:
        body = orjson.loads(request.content or b"{}")
        if "query" not in body:
            return HttpResponse(
                200, content=b'{"errors": [{"message": "PersistedQueryNotSupported"}]}'
            )
        return HttpResponse(200, content=b'{"data": {"a": 1}}')

    transport = MockTransport(server)
    http = FlextApiClient("http://api.test", transport=transport, default_plugins=False)
    gql = GraphQLClient(http, persisted_queries=True)
    first = await gql.query("{ a }")
    second = await gql.query("{ a }")
    sent = [orjson.loads(r.content or b"{}") for r in transport.requests]
    assert first.value == second.value == {"a": 1}
    assert [sorted(body) for body in sent] == [["extensions"], ["query"], ["query"]]
    assert "persisted (unsupported by the server)" in repr(gql)


async def test_apq_not_found_registers_the_document() -> None:
    """PersistedQueryNotFound: the document goes with its hash; APQ stays on."""
    known: set[str] = set()

    def server(request: HttpRequest) -> HttpResponse:
        body = orjson.loads(request.content or b"{}")
        digest = body["extensions"]["persistedQuery"]["sha256Hash"]
        if "query" in body:
            known.add(digest)
        elif digest not in known:
            return HttpResponse(200, content=b'{"errors": [{"message": "PersistedQueryNotFound"}]}')
        return HttpResponse(200, content=b'{"data": {"a": 1}}')

    transport = MockTransport(server)
    http = FlextApiClient("http://api.test", transport=transport, default_plugins=False)
    gql = GraphQLClient(http, persisted_queries=True)
    results = [await gql.query("{ a }") for _ in range(2)]
    sent = [orjson.loads(r.content or b"{}") for r in transport.requests]
    assert [r.value for r in results] == [{"a": 1}, {"a": 1}]
    assert [sorted(body) for body in sent] == [
        ["extensions"],
        ["extensions", "query"],
        ["extensions"],
    ]
