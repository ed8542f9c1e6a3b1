"""Composite routes against hostile backends and clients (KrakenD's backend aggregation
as the anchor), through a real gateway."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests.integration.gateway.conftest import LiveGateway
from tests.integration.gateway.edge_origin import EdgeOrigin
from tests.integration.gateway.edge_support import edge_config, fetch, origin
from tests.servers.fault import FaultServer
from tests.servers.http1 import Request, ResponseWriter

pytestmark = pytest.mark.integration

__all__ = ["origin"]

Run = Callable[[dict[str, Any]], LiveGateway]


def with_fault(
    origin_url: str, fault_url: str, backends: list[dict[str, Any]], **aggregate: Any
) -> dict[str, Any]:
    """A composite route over ``svc`` (the origin) and ``fault`` (the fault server)."""
    config = edge_config(origin_url, aggregate={"backends": backends, **aggregate})
    config["clusters"].append(
        {"name": "fault", "instances": [{"url": fault_url}], "health": {"active": False}}
    )
    return config


def doc_and(path: str) -> list[dict[str, Any]]:
    """The origin's ``/doc`` under ``doc`` and the fault server's ``path`` under ``bad``."""
    return [
        {"key": "doc", "cluster": "svc", "path": "/doc"},
        {"key": "bad", "cluster": "fault", "path": path, "timeout": 10.0},
    ]


def serve(fault: FaultServer, path: str, body: bytes, headers: list[tuple[str, str]]) -> None:
    """Add ``path`` to the fault server: always a 200 with ``body`` and ``headers``."""

    async def handler(req: Request, w: ResponseWriter) -> None:
        await w.send(200, body, headers)

    fault.add_route(path, handler)


@pytest.mark.parametrize(
    "path",
    [
        "/truncated",  # a reset mid-body
        "/drop?rst=1",  # a reset before the head
        "/drop-after-headers",
        "/status/500",
        "/bytes/10",  # not JSON
        "/redirect/1",  # a 302 is not followed
        "/agg-garbage-gzip",
        "/agg-gzip-bomb",
    ],
)
async def test_a_broken_backend_is_left_out_and_marked(
    path: str, origin: EdgeOrigin, fault: FaultServer, run_gateway: Run
) -> None:
    """Each way a backend can fail leaves its key out, listed in _partial, with a 200."""
    json = [("Content-Type", "application/json"), ("Content-Encoding", "gzip")]
    serve(fault, r"/agg-garbage-gzip", b"not gzip at all", json)
    serve(fault, r"/agg-gzip-bomb", gzip.compress(b"[" + b"0," * 2_000_000 + b"0]"), json)
    config = with_fault(origin.url, fault.url, doc_and(path), max_body_bytes=10_000)
    status, headers, body = await fetch(run_gateway(config).url + "/x")
    merged = orjson.loads(body)
    assert (status, headers["X-Aggregate-Partial"], merged["_partial"]) == (200, "true", ["bad"])
    assert merged["doc"]["id"] == 7


async def test_a_redirect_is_not_followed_off_the_cluster(
    origin: EdgeOrigin, fault: FaultServer, run_gateway: Run
) -> None:
    """A backend redirecting elsewhere does not get the client's Authorization sent there."""
    path = f"/redirect-to?url={origin.url}/echo"
    gw = run_gateway(with_fault(origin.url, fault.url, doc_and(path)))
    status, _, body = await fetch(gw.url + "/x", headers={"Authorization": "Bearer s3"})
    assert (status, orjson.loads(body)["_partial"]) == (200, ["bad"])
    assert [r["path"] for r in origin.requests] == ["/doc"]


async def test_arrays_scalars_and_a_backends_headers(
    origin: EdgeOrigin, fault: FaultServer, run_gateway: Run
) -> None:
    """An array or a scalar lands under its key; a backend's Set-Cookie and the client's
    Cookie cross nothing; a backend's own _partial stays inside its key."""
    json = [("Content-Type", "application/json"), ("Set-Cookie", "sid=evil")]
    serve(fault, r"/agg-array", b"[1, 2]", json)
    serve(fault, r"/agg-scalar", b'"s"', json)
    serve(fault, r"/agg-object", b'{"id": 1, "_partial": 3}', json)
    backends = [
        {"key": "a", "cluster": "fault", "path": "/agg-array"},
        {"key": "s", "cluster": "fault", "path": "/agg-scalar"},
        {"key": "o", "cluster": "fault", "path": "/agg-object"},
    ]
    gw = run_gateway(with_fault(origin.url, fault.url, backends))
    status, headers, body = await fetch(gw.url + "/x", headers={"Cookie": "mine=1"})
    assert status == 200 and "Set-Cookie" not in headers
    assert orjson.loads(body) == {"a": [1, 2], "s": "s", "o": {"id": 1, "_partial": 3}}
    assert all("cookie" not in r.headers for r in fault.requests)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_a_method_other_than_get_or_head_is_405(
    method: str, origin: EdgeOrigin, run_gateway: Run
) -> None:
    """The backends are GETs and the body goes nowhere: a DELETE or a POST was answered
    200 from the GETs, as if done. Now a 405 naming GET and HEAD; no backend is called."""
    backends = [{"key": "doc", "cluster": "svc", "path": "/doc"}]
    gw = run_gateway(edge_config(origin.url, aggregate={"backends": backends}))
    status, headers, body = await fetch(gw.url + "/x", method=method, data=b'{"x": 1}')
    assert (status, headers["Allow"]) == (405, "GET, HEAD")
    assert headers["X-Gateway-Reason"] == "method_not_allowed"
    assert orjson.loads(body)["status"] == 405
    assert origin.requests == []


async def test_head_calls_the_backends_and_sends_no_body(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """HEAD is answered as GET would be, without the body."""
    backends = [{"key": "doc", "cluster": "svc", "path": "/doc"}]
    gw = run_gateway(edge_config(origin.url, aggregate={"backends": backends}))
    _, _, got = await fetch(gw.url + "/x")
    status, headers, body = await fetch(gw.url + "/x", method="HEAD")
    assert (status, body, int(headers["Content-Length"])) == (200, b"", len(got))


def test_two_backends_under_one_key_are_a_config_error() -> None:
    """One answer would overwrite the other (or sit beside its own _partial entry)."""
    from pydantic import ValidationError

    from flext_api.gateway._edge_config import AggregateConfig

    backends = [
        {"key": "doc", "cluster": "svc", "path": "/a"},
        {"key": "doc", "cluster": "svc", "path": "/b"},
    ]
    with pytest.raises(ValidationError, match="backend keys must be unique: 'doc'"):
        AggregateConfig.model_validate({"backends": backends})


async def test_a_backend_past_its_timeout_counts_against_its_breaker(run_gateway: Run) -> None:
    """A hung backend is reported as the transport's timeout, as a proxied attempt's is:
    its breaker opens and the next request leaves it out at once (it was only released,
    so a backend that always hung was never found failing and every request waited)."""
    from tests.integration.gateway.test_client_gone import _config, _Silent
    from tests.integration.gateway.upstream import listening

    async with listening(_Silent()) as upstream:
        config = _config(upstream)
        config["clusters"][0]["breaker"] = {"minimum_calls": 3, "failure_ratio": 0.5}
        config["routes"][0]["aggregate"] = {
            "backends": [{"key": "hung", "cluster": "svc", "path": "/h", "timeout": 0.2}]
        }
        gw = run_gateway(config)
        answers = [await fetch(gw.url + "/x") for _ in range(4)]
        assert [(status, orjson.loads(body)["_partial"]) for status, _, body in answers] == [
            (502, ["hung"])
        ] * 4
        assert upstream.arrived.qsize() == 3  # the fourth was never sent: breaker open
