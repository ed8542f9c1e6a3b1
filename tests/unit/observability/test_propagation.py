"""Outgoing calls made inside a flext-api server request carry its ID and trace context."""

from __future__ import annotations

from typing import Any

from flext_api import HttpResponse
from flext_api._context import request_context
from flext_api.client import FlextApiClient
from flext_api.transports._mock import MockTransport
from tests.unit.observability.logcapture import LogCapture

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _client(**kwargs: Any) -> tuple[FlextApiClient, MockTransport]:
    transport = MockTransport(lambda r: HttpResponse(200))
    client = FlextApiClient("http://api.test", transport=transport, **kwargs)
    return client, transport


async def test_request_id_and_traceparent_are_propagated() -> None:
    """Inside a server request, both headers are added to the outgoing call."""
    client, transport = _client()
    with request_context("rid-42", TRACEPARENT):
        await client.get("/x")
    sent = transport.requests[0].headers
    assert (sent["x-request-id"], sent["traceparent"]) == ("rid-42", TRACEPARENT)


async def test_propagation_needs_no_plugin() -> None:
    """Propagation is the client's own: it works with default_plugins=False too."""
    client, transport = _client(default_plugins=False)
    with request_context("rid-7"):
        await client.get("/x")
    assert transport.requests[0].headers["x-request-id"] == "rid-7"
    assert "traceparent" not in transport.requests[0].headers


async def test_callers_own_header_wins() -> None:
    """A request that sets its own X-Request-ID keeps it."""
    client, transport = _client()
    with request_context("rid-42"):
        await client.get("/x", headers={"X-Request-ID": "mine"})
    assert transport.requests[0].headers.get_list("x-request-id") == ["mine"]


async def test_outside_a_server_request_nothing_is_added() -> None:
    """Outside a request the call goes out without either header."""
    client, transport = _client()
    await client.get("/x")
    sent = transport.requests[0].headers
    assert "x-request-id" not in sent and "traceparent" not in sent


async def test_invalid_value_is_dropped_and_logged_without_the_value(json_logs: LogCapture) -> None:
    """A request ID with CR/LF (set outside the middleware) is never sent or shown."""
    client, transport = _client()
    with request_context("evil\r\nX-Injected: 1", TRACEPARENT):
        assert (await client.get("/x")).is_success
    sent = transport.requests[0].headers
    assert "x-request-id" not in sent and "x-injected" not in sent
    assert sent["traceparent"] == TRACEPARENT
    (record,) = json_logs.events("request_id.invalid_value_dropped")
    assert "evil" not in json_logs.text
    assert record["header"] == "X-Request-ID"
