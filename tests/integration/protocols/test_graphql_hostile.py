"""The factory's GraphQL mount against bodies Python cannot read, WebSocket messages
that are JSON but not protocol messages, and documents probing the schema's names."""

from __future__ import annotations

import enum
import io
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import aiohttp
import pytest
import strawberry
from graphql import GraphQLError

from flext_api.server import GraphQLMount, ServerConfig
from tests.server.helpers import build_app, problem, records, serve
from tests.server.live import LiveServer

pytestmark = pytest.mark.integration

GUARD = 30  # seconds: only a hang reaches it
HUGE_INT = "9" * 5000  # more digits than Python's int() converts (4300)
JSON = {"content-type": "application/json"}


@strawberry.enum
class Color(enum.Enum):
    GREEN = "green"


@strawberry.input
class Paint:
    color: Color


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "hello"

    @strawberry.field
    def paint(self, paint: Paint) -> str:
        return paint.color.value


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def count(self) -> AsyncGenerator[int, None]:
        yield 1


SCHEMA = strawberry.Schema(query=Query)


def _app(stream: io.StringIO, **mount: Any) -> Any:
    return build_app(ServerConfig(), stream=stream, graphql=GraphQLMount(SCHEMA, **mount))


# -- bodies the JSON parser raises on without a syntax error -------------------------------
@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("POST", {"content": b'{"query": "{ hello }", "x": "\xff\xfe"}'}),
        ("POST", {"content": '{"query": "{ hello }", "variables": {"n": ' + HUGE_INT + "}}"}),
        ("POST", {"content": HUGE_INT}),
        ("GET", {"params": {"query": "{ hello }", "variables": '{"n": ' + HUGE_INT + "}"}}),
    ],
    ids=["not-utf8", "huge-int-variable", "huge-int-body", "huge-int-get"],
)
async def test_json_python_cannot_read_is_400(method: str, kwargs: dict[str, Any]) -> None:
    """Bytes that are not UTF-8, or an integer of more digits than Python converts, are
    a 400 problem like any unparsable body: they raised a ValueError that was answered
    500 and logged as a crash."""
    stream = io.StringIO()
    async with serve(_app(stream, allow_get=True)) as client:
        response = await client.request(method, "/graphql", headers=JSON, **kwargs)
    assert response.status_code == 400
    assert problem(response)["detail"] == "Unable to parse request body as JSON"
    assert records(stream, "unhandled exception") == []


# -- WebSocket messages that are JSON but not protocol messages ---------------------------
@pytest.fixture(scope="module")
def ws_url() -> Iterator[str]:
    schema = strawberry.Schema(query=Query, subscription=Subscription)
    app = build_app(ServerConfig(), stream=io.StringIO(), graphql=schema)
    live = LiveServer(app).start()
    try:
        yield live.url + "/graphql"
    finally:
        live.stop()


INIT = {"type": "connection_init"}
QUERY = {"query": "{ hello }"}


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        (["5"], "A WebSocket message must be a JSON object."),
        (["[]"], "A WebSocket message must be a JSON object."),
        (["null"], "A WebSocket message must be a JSON object."),
        ([{"type": ["connection_init"]}], "A WebSocket message's `type` must be a string."),
        (
            [INIT, {"type": "subscribe", "id": [1], "payload": QUERY}],
            "A `subscribe` message's `id` must be a string.",
        ),
        (
            [INIT, {"type": "subscribe", "id": "1", "payload": "{ hello }"}],
            "A `subscribe` message's payload must be an object with a string `query`.",
        ),
        (
            [INIT, {"type": "subscribe", "id": "1", "payload": {"query": 5}}],
            "A `subscribe` message's payload must be an object with a string `query`.",
        ),
        (
            [INIT, {"type": "subscribe", "id": "1", "payload": {**QUERY, "variables": 5}}],
            "The GraphQL operation's `variables` must be an object or null, if provided.",
        ),
        (
            [INIT, {"type": "complete", "id": {"a": 1}}],
            "A `complete` message's `id` must be a string.",
        ),
        (
            [INIT, '{"type": "subscribe", "id": "1", "payload": {"n": ' + HUGE_INT + "}}"],
            "WebSocket message must be valid JSON",
        ),
    ],
    ids=[
        "int",
        "list",
        "null",
        "type-list",
        "id-list",
        "payload-str",
        "query-int",
        "variables-int",
        "complete-id-dict",
        "huge-int",
    ],
)
async def test_malformed_transport_ws_message_closes_4400(
    ws_url: str, messages: list[Any], reason: str
) -> None:
    """graphql-transport-ws closes with 4400 and a reason on a message of a format its
    spec does not define. These raised out of strawberry's handler instead (the
    connection died as an ASGI crash, close code 1011) or, for a query that is not a
    string, sent Python's own error text to the client."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url, protocols=("graphql-transport-ws",)) as ws,
    ):
        for message in messages:
            await (ws.send_str(message) if isinstance(message, str) else ws.send_json(message))
        received = await ws.receive(timeout=GUARD)
        if messages[0] == INIT:
            assert received.json() == {"type": "connection_ack"}
            received = await ws.receive(timeout=GUARD)
    assert received.type is aiohttp.WSMsgType.CLOSE
    assert (received.data, received.extra) == (4400, reason)


async def test_legacy_protocol_ignores_messages_it_cannot_read(ws_url: str) -> None:
    """graphql-ws ignores a message that is not an object, or names no operation it can
    answer (as it ignores non-JSON); a ``start`` whose payload is wrong gets an error
    for its id; the connection goes on. Each of these crashed the connection."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url, protocols=("graphql-ws",)) as ws,
    ):
        for garbage in ("5", "[]", '"x"', '{"type": 5}'):
            await ws.send_str(garbage)
        await ws.send_json(INIT)
        assert await ws.receive_json(timeout=GUARD) == {"type": "connection_ack"}
        await ws.send_json({"type": "start", "id": [1], "payload": QUERY})
        await ws.send_json({"type": "stop", "id": {"a": 1}})
        await ws.send_json({"type": "start", "id": "bad", "payload": {"query": 5}})
        assert await ws.receive_json(timeout=GUARD) == {
            "type": "error",
            "id": "bad",
            "payload": {
                "message": "A `start` message's payload must be an object with a string `query`."
            },
        }
        await ws.send_json(
            {"type": "start", "id": "ok", "payload": {"query": "subscription { count }"}}
        )
        assert await ws.receive_json(timeout=GUARD) == {
            "type": "data",
            "id": "ok",
            "payload": {"data": {"count": 1}},
        }


# -- introspection off: no schema names in the request's errors ----------------------------
SUGGESTING = [
    ("{ hell }", "Cannot query field 'hell' on type 'Query'."),
    ("{ paint(pant: {color: GREEN}) }", "Unknown argument 'pant' on field 'Query.paint'."),
    ("query($p: Pain!) { paint(paint: $p) }", "Unknown type 'Pain'."),
    ("{ paint(paint: {color: GREN}) }", "Value 'GREN' does not exist in 'Color' enum."),
    (
        "{ paint(paint: {colr: GREEN}) }",
        "Expected value of type 'Paint' not to include unknown field 'colr'. "
        "Found: { colr: GREEN }.",
    ),
]


async def _errors(app: Any, document: str, variables: dict[str, Any] | None = None) -> list[str]:
    async with serve(app) as client:
        response = await client.post("/graphql", json={"query": document, "variables": variables})
    assert response.status_code == 200
    return [error["message"] for error in response.json()["errors"]]


@pytest.mark.parametrize(("document", "message"), SUGGESTING)
async def test_no_suggestions_when_introspection_is_off(document: str, message: str) -> None:
    """With introspection off (the default), an error about the document does not end
    with "Did you mean ...?": graphql-core's suggestions gave away the names of the
    schema one guess at a time (what tools such as clairvoyance rebuild it from)."""
    errors = await _errors(_app(io.StringIO()), document)
    assert message in errors
    assert not any("Did you mean" in error for error in errors)


async def test_no_suggestions_in_variable_errors() -> None:
    """A variable's value is checked against the schema too: its error loses the
    suggested enum value."""
    document = "query($p: Paint!) { paint(paint: $p) }"
    [error] = await _errors(_app(io.StringIO()), document, {"p": {"color": "GREN"}})
    assert "Value 'GREN' does not exist in 'Color' enum." in error
    assert "Did you mean" not in error and "GREEN" not in error


async def test_suggestions_kept_with_introspection() -> None:
    """With introspection on the schema is public anyway: suggestions stay."""
    errors = await _errors(_app(io.StringIO(), introspection=True), "{ hell }")
    assert errors == ["Cannot query field 'hell' on type 'Query'. Did you mean 'hello'?"]


async def test_resolver_graphql_error_is_sent_as_raised() -> None:
    """A GraphQLError a resolver raises for the client keeps its whole message."""

    @strawberry.type
    class Asking:
        @strawberry.field
        def lookup(self) -> str | None:
            raise GraphQLError("No such user. Did you mean 'ada'?")

    schema = strawberry.Schema(query=Asking)
    app = build_app(ServerConfig(), stream=io.StringIO(), graphql=schema)
    assert await _errors(app, "{ lookup }") == ["No such user. Did you mean 'ada'?"]


async def test_no_suggestions_over_websocket(ws_url: str) -> None:
    """An operation sent over graphql-transport-ws gets the same errors."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url, protocols=("graphql-transport-ws",)) as ws,
    ):
        await ws.send_json(INIT)
        assert (await ws.receive_json(timeout=GUARD))["type"] == "connection_ack"
        await ws.send_json({"type": "subscribe", "id": "1", "payload": {"query": "{ hell }"}})
        answer = await ws.receive_json(timeout=GUARD)
    assert answer["type"] == "error"
    assert [e["message"] for e in answer["payload"]] == [
        "Cannot query field 'hell' on type 'Query'."
    ]
