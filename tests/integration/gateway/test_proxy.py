"""Proxying through a real gateway to real upstreams: routing, headers, failures, retries."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from flext_api.server._protocol import httptools_available
from tests.integration.gateway.conftest import LiveGateway, basic_config
from tests.integration.gateway.upstream import Upstream
from tests.servers.fault import FaultServer
from tests.servers.http1 import Request, ResponseWriter

pytestmark = pytest.mark.integration

Run = Callable[[dict[str, Any]], LiveGateway]
PARSERS = ["h11", *(["httptools"] if httptools_available() else [])]


async def _get(url: str, **kwargs: Any) -> tuple[int, CIMultiDict[str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(kwargs.pop("method", "GET"), url, **kwargs) as response,
    ):
        return response.status, response.headers.copy(), await response.read()


async def test_routing_precedence(upstreams: tuple[Upstream, Upstream], run_gateway: Run) -> None:
    """Priority first, then exact > template > prefix (longest) > regex, whatever the order."""
    a, b = upstreams
    config = basic_config(a.url)
    config["clusters"].append({"name": "b", "instances": [{"url": b.url}]})
    config["routes"] = [
        {"name": "regex", "match": {"path_regex": "/echo/.*"}, "cluster": "svc"},
        {"name": "prefix", "match": {"path_prefix": "/echo"}, "cluster": "svc"},
        {"name": "long-prefix", "match": {"path_prefix": "/echo/long"}, "cluster": "b"},
        {"name": "template", "match": {"path_template": "/echo/items/{id}"}, "cluster": "b"},
        {"name": "exact", "match": {"path": "/echo/items/special"}, "cluster": "svc"},
        {
            "name": "urgent",
            "match": {"path": "/echo/x", "headers": {"X-Pin": "b"}},
            "cluster": "b",
            "priority": 10,
        },
    ]
    gw = run_gateway(config)
    expected = {
        "/echo/items/7": "b",  # template beats prefix
        "/echo/items/special": "a",  # exact beats template
        "/echo/long/x": "b",  # longest prefix wins
        "/echo/other": "a",  # shorter prefix beats regex
    }
    for path, instance in expected.items():
        status, headers, _ = await _get(gw.url + path)
        assert (path, status, headers["X-Upstream"]) == (path, 200, instance)
    status, headers, _ = await _get(gw.url + "/echo/x", headers={"X-Pin": "b"})
    assert headers["X-Upstream"] == "b"


async def test_no_route_is_typed_404(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A request no route matches gets a problem+json 404 with reason no_route."""
    a, _ = upstreams
    gw = run_gateway(
        {
            **basic_config(a.url),
            "routes": [{"name": "only", "match": {"path": "/echo/only"}, "cluster": "svc"}],
        }
    )
    status, headers, body = await _get(gw.url + "/elsewhere")
    assert status == 404
    assert headers["X-Gateway-Reason"] == "no_route"
    assert headers["Content-Type"] == "application/problem+json"
    assert b'"reason":"no_route"' in body


async def test_forwarding_headers(upstreams: tuple[Upstream, Upstream], run_gateway: Run) -> None:
    """Hop-by-hop headers go, forged X-Forwarded-For is replaced, Via and request ID added."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    status, headers, _ = await _get(
        gw.url + "/echo/h",
        headers={
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1",
            "Keep-Alive": "timeout=5",
            "X-Forwarded-For": "6.6.6.6",
            "X-Request-ID": "req-123",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        },
    )
    assert status == 200
    seen = dict(a.requests[-1]["headers"])
    assert "x-secret-hop" not in seen and "keep-alive" not in seen
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["via"] == "1.1 flext-gateway"
    assert seen["x-request-id"] == "req-123"
    assert seen["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c")
    assert "for=127.0.0.1;proto=http" in seen["forwarded"]
    assert headers["X-Request-ID"] == "req-123"
    assert headers["Via"].endswith("1.1 flext-gateway")


async def test_strip_prefix_and_rewrite(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """strip_prefix drops the matched prefix; rewrite applies a regex to the path."""
    a, _ = upstreams
    config = basic_config(a.url)
    config["routes"] = [
        {"name": "api", "match": {"path_prefix": "/api"}, "cluster": "svc", "strip_prefix": True},
        {
            "name": "v1",
            "match": {"path_prefix": "/v1"},
            "cluster": "svc",
            "rewrite": {"regex": "^/v1/(.*)$", "replacement": r"/echo/v2/\1"},
        },
    ]
    gw = run_gateway(config)
    await _get(gw.url + "/api/echo/x?q=1")
    await _get(gw.url + "/v1/thing")
    assert [(r["path"], r["query"]) for r in a.requests] == [
        ("/echo/x", "q=1"),
        ("/echo/v2/thing", ""),
    ]


async def test_head_has_no_body(upstreams: tuple[Upstream, Upstream], run_gateway: Run) -> None:
    """HEAD is answered with headers only."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    status, _, body = await _get(gw.url + "/echo/head", method="HEAD")
    assert (status, body) == (200, b"")


def _pipelined(port: int, first: bytes) -> bytes:
    """``first`` and a GET /echo behind it in one write; everything until the close."""
    second = b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(first + second)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(("method", "status"), [("GET", 304), ("GET", 204), ("HEAD", 200)])
def test_bodiless_answers_with_a_content_length_keep_the_connection(
    fault: FaultServer, run_gateway: Run, parser: str, method: str, status: int
) -> None:
    """An upstream 304 or 204 announcing a length (RFC 9110 section 8.6 allows it on a
    304) is relayed without it and without a body, a HEAD's keeps it; either way the
    pipelined request behind it is answered."""

    async def announced(request: Request, writer: ResponseWriter) -> None:
        await writer.send_head(
            int(request.path_params[0]), [("ETag", '"v1"'), ("Content-Length", "5")]
        )
        writer.finish()

    route = fault.add_route(r"/announced/(\d{3})", announced)
    try:
        config = basic_config(fault.url)
        config["listeners"] = [{"parser": parser}]
        gw = run_gateway(config)
        first = f"{method} /announced/{status} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        raw = _pipelined(gw.port, first)
    finally:
        fault.remove_route(route)
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert lines[0].startswith(b"http/1.1 %d" % status)
    assert b'etag: "v1"' in lines
    length = [line for line in lines if line.startswith(b"content-length:")]
    assert length == ([b"content-length: 5"] if method == "HEAD" else [])
    assert rest.startswith(b"HTTP/1.1 200 OK"), raw
    assert fault.hits("/echo") == 1


@pytest.mark.parametrize("framed", [True, False], ids=["content-length", "unframed"])
async def test_an_unsolicited_101_is_a_502(
    fault: FaultServer, run_gateway: Run, framed: bool
) -> None:
    """A 101 to a request that asked for no upgrade is never relayed: 502
    invalid_response, and the client's connection keeps working."""

    async def switched(request: Request, writer: ResponseWriter) -> None:
        framing = [("Content-Length", "2")] if framed else []
        await writer.send_head(101, [("Upgrade", "websocket"), ("Connection", "Upgrade"), *framing])
        await writer.write(b"st" if framed else b"")
        writer.finish()

    route = fault.add_route(r"/switched", switched)
    try:
        gw = run_gateway(basic_config(fault.url, retry={"retries": 0}))
        async with aiohttp.ClientSession() as session:
            async with session.get(gw.url + "/switched") as response:
                status, headers = response.status, response.headers.copy()
                body = await response.json(content_type=None)
            async with session.get(gw.url + "/echo") as response:
                after = response.status
    finally:
        fault.remove_route(route)
    assert (status, headers["X-Gateway-Reason"], body["reason"]) == (
        502,
        "invalid_response",
        "invalid_response",
    )
    assert after == 200


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    ],
    ids=["space-in-a-name", "two-lengths"],
)
async def test_an_answer_that_is_not_http_is_invalid_response(
    run_gateway: Run, answer: bytes
) -> None:
    """An upstream answer its parser refuses is a 502 invalid_response, the instance's
    fault, not upstream_reset ("closed the connection before answering")."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
        gw = run_gateway(basic_config(url, retry={"retries": 0}))
        status, headers, raw = await _get(gw.url + "/echo/x")
    finally:
        listener.close()
        await listener.wait_closed()
    assert (status, headers["X-Gateway-Reason"]) == (502, "invalid_response"), raw


async def test_connect_failure_is_typed_502(run_gateway: Run) -> None:
    """An instance that refuses connections gives a 502 with reason connect_failure."""
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening
        gw = run_gateway(basic_config(dead))
        status, headers, _ = await _get(gw.url + "/echo/x")
    assert (status, headers["X-Gateway-Reason"]) == (502, "connect_failure")


async def test_get_retried_on_another_instance(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A GET whose first instance refuses the connection is answered by the other one."""
    a, _ = upstreams
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
        gw = run_gateway(basic_config(dead, a.url))
        results = [await _get(gw.url + "/echo/r") for _ in range(4)]
    assert [r[0] for r in results] == [200, 200, 200, 200]


async def test_post_not_retried_after_body_sent(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A POST whose body reached an upstream that then dropped it is not replayed."""
    a, b = upstreams
    gw = run_gateway(basic_config(a.url, b.url))
    status, headers, _ = await _get(gw.url + "/drop-after-body", method="POST", data=b"z" * 1000)
    assert status == 502
    assert headers["X-Gateway-Reason"] == "upstream_reset"
    assert a.hits("/drop-after-body") + b.hits("/drop-after-body") == 1


async def test_idempotent_get_retried_after_reset(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A GET dropped after it was sent is retried, on the other instance first."""
    a, b = upstreams
    gw = run_gateway(basic_config(a.url, b.url))
    status, headers, _ = await _get(gw.url + "/drop-after-body")
    assert (status, headers["X-Gateway-Reason"]) == (502, "upstream_reset")  # both drop it
    # retries: 2 by default -> 3 attempts, alternating instances
    assert sorted([a.hits("/drop-after-body"), b.hits("/drop-after-body")]) == [1, 2]


@pytest.mark.parametrize(("key", "hits"), [("order-42", [1, 2]), ("", [0, 1]), ("  ", [0, 1])])
async def test_only_a_real_idempotency_key_makes_a_post_replayable(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run, key: str, hits: list[int]
) -> None:
    """A POST with an Idempotency-Key is retried like a GET; a blank key is no key (the
    upstream could deduplicate nothing), so that POST reaches the upstreams once."""
    a, b = upstreams
    gw = run_gateway(basic_config(a.url, b.url))
    status, _, _ = await _get(
        gw.url + "/drop-after-body", method="POST", headers={"Idempotency-Key": key}
    )
    assert status == 502
    assert sorted([a.hits("/drop-after-body"), b.hits("/drop-after-body")]) == hits


@pytest.mark.parametrize("cache", [False, True], ids=["plain", "cached-route"])
async def test_status_outside_the_valid_range_is_a_502(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run, cache: bool
) -> None:
    """An upstream status outside 100-599 (RFC 9110 section 15) is never relayed: the
    client gets a 502 problem, an idempotent request is retried on the other instance,
    and the connection keeps working."""
    a, b = upstreams
    gw = run_gateway(basic_config(a.url, b.url, cache=cache))
    async with aiohttp.ClientSession() as session:
        async with session.get(gw.url + "/status/999") as response:
            status, headers = response.status, response.headers.copy()
            body = await response.json(content_type=None)
        assert (status, headers["X-Gateway-Reason"]) == (502, "invalid_response")
        assert body["reason"] == "invalid_response"
        # retries: 2 by default -> 3 attempts, alternating instances
        assert sorted([a.hits("/status/999"), b.hits("/status/999")]) == [1, 2]
        async with session.get(gw.url + "/echo/after") as response:
            assert response.status == 200
    status, _, _ = await _get(gw.url + "/status/599")
    assert status == 599


async def test_upstream_cut_mid_response_cuts_client(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run, caplog: pytest.LogCaptureFixture
) -> None:
    """An upstream dying mid-body gives the client a cut stream, never a complete 200;
    the server logs no "Exception in ASGI application" traceback for that deliberate
    cut (the access log has it, with reason upstream_cut)."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    server_log = logging.getLogger("uvicorn.error")  # does not propagate to the root
    server_log.addHandler(caplog.handler)
    try:
        async with aiohttp.ClientSession() as session, session.get(gw.url + "/cut") as r:
            assert r.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()
        async with aiohttp.ClientSession() as session, session.get(gw.url + "/echo/x") as r:
            assert r.status == 200  # the request after it is served: the cut was handled
    finally:
        server_log.removeHandler(caplog.handler)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_upstream_status_passes_through(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A 503 from the service reaches the client as the service's, without a gateway reason."""
    a, _ = upstreams
    config = basic_config(a.url)
    config["clusters"][0]["retry"] = {"retries": 0}
    gw = run_gateway(config)
    status, headers, body = await _get(gw.url + "/status/503")
    assert status == 503
    assert "X-Gateway-Reason" not in headers
    assert b'"instance": "a"' in body


async def test_expect_100_continue(upstreams: tuple[Upstream, Upstream], run_gateway: Run) -> None:
    """A client waiting for 100 Continue gets it, then its body reaches the upstream."""
    import socket

    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))

    def exchange() -> bytes:
        with socket.create_connection(("127.0.0.1", gw.port), timeout=30) as sock:
            sock.sendall(
                b"POST /echo/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
            )
            interim = sock.recv(65536)
            assert interim.startswith(b"HTTP/1.1 100 ")
            sock.sendall(b"hello")
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
            return raw

    raw = await asyncio.to_thread(exchange)
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert [(r["path"], r["body_length"]) for r in a.requests if r["path"] != "/health"] == [
        ("/echo/expect", 5)
    ]
