"""Composite routes (aggregation) and transformations through a real gateway."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import pytest

from tests.integration.gateway.conftest import LiveGateway
from tests.integration.gateway.edge_origin import EdgeOrigin
from tests.integration.gateway.edge_support import edge_config, fetch, origin

pytestmark = pytest.mark.integration

__all__ = ["origin"]

Run = Callable[[dict[str, Any]], LiveGateway]


def composite(origin_url: str, slow_ms: int) -> dict[str, Any]:
    """A route merging ``/doc`` and a backend that sleeps ``slow_ms`` (timeout 0.3 s)."""
    backends = [
        {"key": "doc", "cluster": "svc", "path": "/doc", "timeout": 2.0},
        {"key": "slow", "cluster": "svc", "path": f"/c/s?ms={slow_ms}&cc=no-store",
         "timeout": 0.3},
    ]  # fmt: skip
    return edge_config(origin_url, aggregate={"backends": backends}, timeouts={"total": 1.0})


async def test_aggregate_merges_every_backend(origin: EdgeOrigin, run_gateway: Run) -> None:
    """Every backend answering: one JSON object keyed by backend, not partial."""
    gw = run_gateway(composite(origin.url, 0))
    status, headers, body = await fetch(gw.url + "/combined")
    merged = orjson.loads(body)
    assert (status, merged["doc"]["id"], merged["slow"]["name"]) == (200, 7, "s")
    assert "X-Aggregate-Partial" not in headers


async def test_aggregate_keeps_integers_past_64_bits(origin: EdgeOrigin, run_gateway: Run) -> None:
    """A backend's 30-digit integer is merged as the backend wrote it: orjson turned it
    into a float (1.2345678901234568e+29) and could not have written it back either."""
    big = "123456789012345678901234567890"
    backends = [
        {"key": "ledger", "cluster": "svc", "path": f"/raw?b=%7B%22amount%22%3A{big}%7D",
         "timeout": 2.0},
    ]  # fmt: skip
    gw = run_gateway(edge_config(origin.url, aggregate={"backends": backends}))
    status, _, body = await fetch(gw.url + "/combined")
    assert status == 200
    assert f'"amount":{big}'.encode() in body


async def test_slow_backend_gives_a_partial_answer_in_time(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """A backend slower than its timeout is left out and the answer is marked partial."""
    gw = run_gateway(composite(origin.url, 60_000))
    # A backend that sleeps a minute: only a gateway that stops waiting at the backend's
    # timeout answers within the client's generous bound.
    status, headers, body = await fetch(
        gw.url + "/combined", timeout=aiohttp.ClientTimeout(total=20)
    )
    merged = orjson.loads(body)
    assert (status, headers["X-Aggregate-Partial"], merged["_partial"]) == (200, "true", ["slow"])
    assert merged["doc"]["name"] == "widget"


async def test_request_headers_and_query_are_rewritten(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """Headers added/removed and query keys added/removed before the upstream sees them."""
    transform = {
        "request_headers_add": {"X-Tenant": "acme"},
        "request_headers_remove": ["X-Debug"],
        "query_add": {"v": "2"},
        "query_remove": ["token"],
    }
    gw = run_gateway(edge_config(origin.url, transform=transform))
    await fetch(gw.url + "/echo?token=t&keep=1&v=1", headers={"X-Debug": "1"})
    seen = origin.requests[-1]
    assert seen["headers"]["x-tenant"] == "acme" and "x-debug" not in seen["headers"]
    assert seen["query"] == "keep=1&v=2"


async def test_response_fields_are_filtered(origin: EdgeOrigin, run_gateway: Run) -> None:
    """A deny list removes top-level JSON fields and fixes Content-Length."""
    gw = run_gateway(edge_config(origin.url, transform={"response_deny": ["secret"]}))
    _, headers, body = await fetch(gw.url + "/doc")
    assert orjson.loads(body) == {"id": 7, "name": "widget"}
    assert int(headers["Content-Length"]) == len(body)


async def test_a_range_request_cannot_step_around_the_field_filter(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """A static JSON upstream honours Range: a slice of the body is not a JSON object the
    filter can read, so it went through untouched, denied field included. The route
    asks for the whole body and filters it; its HEAD states no unfiltered length."""
    gw = run_gateway(edge_config(origin.url, transform={"response_deny": ["secret"]}))
    status, headers, body = await fetch(
        gw.url + "/docfile", headers={"Range": "bytes=0-40", "If-Range": "x"}
    )
    assert (status, orjson.loads(body)) == (200, {"id": 7, "name": "widget"})
    assert "range" not in origin.requests[-1]["headers"]
    assert headers["ETag"].startswith("W/") and "Accept-Ranges" not in headers
    status, headers, body = await fetch(gw.url + "/docfile", method="HEAD")
    assert (status, body, headers.get("Content-Length")) == (200, b"", None)


async def test_response_allow_list(origin: EdgeOrigin, run_gateway: Run) -> None:
    """An allow list keeps only the named fields."""
    gw = run_gateway(edge_config(origin.url, transform={"response_allow": ["id"]}))
    _, _, body = await fetch(gw.url + "/doc")
    assert orjson.loads(body) == {"id": 7}


async def test_a_cut_upstream_behind_a_field_filter_is_a_502(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """The filter holds a JSON response's start for its whole body: when the upstream
    cuts it, nothing has reached the client, which gets the gateway's 502 upstream_cut
    (it got uvicorn's bare 500 and the log said 200)."""
    gw = run_gateway(edge_config(origin.url, transform={"response_deny": ["secret"]}))
    status, headers, body = await fetch(gw.url + "/cutjson")
    assert (status, headers["X-Gateway-Reason"]) == (502, "upstream_cut")
    assert orjson.loads(body)["reason"] == "upstream_cut"


async def test_aggregate_backends_get_the_gateways_identity_only(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """Aggregate backends get the identity headers the gateway set, under their
    configured names, and the forward-auth headers it copied; a client's own X-Auth-*
    headers never pass (they went through as identities)."""
    edge = {
        "auth": {
            "forward": {"url": origin.url + "/auth", "copy_headers": ["x-user"]},
            "identity_headers": {"subject": "x-user-id", "method": "x-user-method"},
        }
    }
    backends = [{"key": "who", "cluster": "svc", "path": "/echo", "timeout": 2.0}]
    config = edge_config(
        origin.url, edge=edge, auth={"methods": ["forward"]}, aggregate={"backends": backends}
    )
    gw = run_gateway(config)
    forged = {"Authorization": "Bearer good", "X-Auth-Subject": "root", "X-Auth-Admin": "yes"}
    status, _, body = await fetch(gw.url + "/combined", headers=forged)
    seen = orjson.loads(body)["who"]["headers"]
    assert status == 200
    assert (seen["x-user-id"], seen["x-user-method"], seen["x-user"]) == (
        "alice",
        "forward",
        "alice",
    )
    assert "x-auth-subject" not in seen and "x-auth-admin" not in seen
