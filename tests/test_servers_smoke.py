"""Smoke tests for the local test servers: each fixture and fault endpoint really works."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.error import HTTPError

import aiohttp
import httpx2
import pytest
import redis

from tests.servers.fault import FaultServer
from tests.servers.h2_server import H2Server
from tests.servers.httpbin_server import HttpbinServer
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration

# No proxies from the environment: traffic must stay on 127.0.0.1.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Reply:
    """A fully read urllib response (or HTTPError), closed already."""

    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> Reply:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with _opener.open(request, timeout=5) as response:
            return Reply(response.status, response.headers, response.read())
    except HTTPError as error:
        with error:
            return Reply(error.code, error.headers, error.read())


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
        return bytes(received)


def split_response(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status_line, headers, body


def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# -------------------------------------------------------------------- fault server
def test_status_with_extra_headers(fault: FaultServer) -> None:
    """/status/{code} answers that status, a JSON body and the h= headers."""
    reply = fetch(f"{fault.url}/status/503?h=X-Test:yes&h=Retry-After:2")
    assert reply.status == 503
    assert reply.json() == {"status": 503}
    assert reply.headers["X-Test"] == "yes"
    assert reply.headers["Retry-After"] == "2"
    assert reply.headers["Date"]
    assert fault.hits("/status/503") == 1
    assert fault.requests[0].query == "h=X-Test:yes&h=Retry-After:2"


def test_unknown_path_is_404_json(fault: FaultServer) -> None:
    """An unknown path answers 404 with a JSON body."""
    reply = fetch(f"{fault.url}/no/such/thing")
    assert reply.status == 404
    assert reply.json()["path"] == "/no/such/thing"


def test_keep_alive_serves_several_requests_on_one_connection(fault: FaultServer) -> None:
    """Two requests on one socket get two answers and share one connection id."""
    raw = raw_exchange(
        fault.port,
        b"GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /status/201 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert raw.count(b"HTTP/1.1 ") == 2
    assert b"HTTP/1.1 200 OK" in raw
    assert b"HTTP/1.1 201 Created" in raw
    assert fault.connections_opened == 1
    assert {r.connection_id for r in fault.requests} == {fault.requests[0].connection_id}
    assert wait_until(lambda: fault.open_connections == 0)


def test_chunked_request_body_is_decoded(fault: FaultServer) -> None:
    """A chunked request body is reassembled and recorded."""
    raw = raw_exchange(
        fault.port,
        b"POST /echo?a=1&a=2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"X-Dup: one\r\nX-Dup: two\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
    )
    _, _, body = split_response(raw)
    echoed = json.loads(body)
    assert echoed["body"] == "hello world"
    assert echoed["query"] == {"a": ["1", "2"]}
    recorded = fault.requests[0]
    assert recorded.body == b"hello world"
    assert recorded.headers["x-dup"] == "one, two"
    assert (recorded.method, recorded.path) == ("POST", "/echo")


async def test_echo_reports_the_request(fault: FaultServer) -> None:
    """/echo returns method, path, query, headers and body as JSON."""
    async with httpx2.AsyncClient(trust_env=False) as client:
        response = await client.put(
            f"{fault.url}/echo", params={"q": "x"}, content=b"\xffabc", headers={"X-A": "b"}
        )
    data = response.json()
    assert data["method"] == "PUT"
    assert data["query"] == {"q": ["x"]}
    assert data["headers"]["x-a"] == "b"
    assert data["body"] == "\ufffdabc"
    assert data["body_length"] == 4


async def test_delay_holds_back_the_headers(fault: FaultServer) -> None:
    """/delay/{s} answers only after s seconds, so a shorter read timeout fires."""
    async with httpx2.AsyncClient(trust_env=False) as client:
        with pytest.raises(httpx2.ReadTimeout):
            await client.get(f"{fault.url}/delay/0.5", timeout=0.1)
        started = time.monotonic()
        response = await client.get(f"{fault.url}/delay/0.2")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_flaky_fails_n_times_then_succeeds(fault: FaultServer) -> None:
    """/flaky/{key}/{n}/{status} fails n times per key, then answers 200."""
    url = f"{fault.url}/flaky/k1/2/503?h=Retry-After:1"
    first, second, third = fetch(url), fetch(url), fetch(url)
    assert (first.status, second.status, third.status) == (503, 503, 200)
    assert first.headers["Retry-After"] == "1"
    assert third.json() == {"ok": True, "attempt": 3}
    assert fetch(f"{fault.url}/flaky/k2/1/500").status == 500  # keys are independent
    fault.reset()
    assert fetch(url).status == 503  # reset() clears the counters


def test_drop_sends_nothing(fault: FaultServer) -> None:
    """/drop closes the socket without a single byte of response."""
    assert raw_exchange(fault.port, b"GET /drop HTTP/1.1\r\nHost: x\r\n\r\n") == b""
    assert fault.hits("/drop") == 1


def test_drop_with_rst_resets_the_connection(fault: FaultServer) -> None:
    """/drop?rst=1 aborts the connection with a TCP reset."""
    with pytest.raises(ConnectionResetError):
        raw_exchange(fault.port, b"GET /drop?rst=1 HTTP/1.1\r\nHost: x\r\n\r\n")


def test_drop_after_headers_sends_headers_only(fault: FaultServer) -> None:
    """/drop-after-headers promises 100 bytes, sends none and closes."""
    raw = raw_exchange(fault.port, b"GET /drop-after-headers HTTP/1.1\r\nHost: x\r\n\r\n")
    status_line, headers, body = split_response(raw)
    assert status_line == "HTTP/1.1 200 OK"
    assert headers["content-length"] == "100"
    assert body == b""


async def test_truncated_body_is_shorter_than_content_length(fault: FaultServer) -> None:
    """/truncated sends 10 of the 1000 announced bytes, which clients detect."""
    raw = raw_exchange(fault.port, b"GET /truncated HTTP/1.1\r\nHost: x\r\n\r\n")
    _, headers, body = split_response(raw)
    assert int(headers["content-length"]) == 1000
    assert body == b"0123456789"
    async with aiohttp.ClientSession() as session, session.get(f"{fault.url}/truncated") as resp:
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_slow_body_trickles_bytes(fault: FaultServer) -> None:
    """/slow-body sends headers at once and then one byte per interval."""
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        async with session.get(f"{fault.url}/slow-body?chunks=3&interval=0.2") as resp:
            headers_after = time.monotonic() - started
            assert resp.headers["Content-Length"] == "3"
            body = await resp.read()
        body_after = time.monotonic() - started
    assert body == b"xxx"
    # Headers arrive before the trickled body is done; no bound on how fast (machine speed).
    assert headers_after < body_after
    assert body_after >= 0.55


def test_retry_after_and_ratelimit_headers(fault: FaultServer) -> None:
    """/retry-after answers 429 with Retry-After (and RateLimit-*) n times, then 200."""
    url = f"{fault.url}/retry-after/r1/1?after=3600&ratelimit=1"
    limited, ok = fetch(url), fetch(url)
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "3600"
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert limited.headers["RateLimit-Reset"] == "3600"
    assert ok.status == 200
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    dated = fetch(f"{fault.url}/retry-after/r2/1?after={date.replace(' ', '%20')}")
    assert dated.headers["Retry-After"] == date
    assert "RateLimit-Limit" not in dated.headers


def test_cache_etag_revalidation(fault: FaultServer) -> None:
    """/cache with etag answers 304 to a matching If-None-Match and counts hits."""
    url = f"{fault.url}/cache/e?etag=v1&max_age=60"
    first = fetch(url)
    assert first.status == 200
    assert first.headers["ETag"] == '"v1"'
    assert first.headers["Cache-Control"] == "max-age=60"
    assert first.json() == {"name": "e", "hit": 1, "accept": None}
    revalidated = fetch(url, headers={"If-None-Match": '"v1"'})
    assert revalidated.status == 304
    assert revalidated.body == b""
    assert fetch(url, headers={"If-None-Match": '"v0"'}).status == 200
    assert fault.hits("/cache/e") == 3


def test_cache_last_modified_vary_and_expires(fault: FaultServer) -> None:
    """/cache honours If-Modified-Since and sends Vary, Expires and Date."""
    url = f"{fault.url}/cache/m?last_modified=1&vary=Accept&expires=120&cc=public"
    first = fetch(url, headers={"Accept": "text/plain"})
    assert first.headers["Vary"] == "Accept"
    assert first.headers["Cache-Control"] == "public"
    assert first.json()["accept"] == "text/plain"
    expires = parsedate_to_datetime(first.headers["Expires"])
    date = parsedate_to_datetime(first.headers["Date"])
    assert 119 <= (expires - date).total_seconds() <= 121
    lm = first.headers["Last-Modified"]
    assert fetch(url, headers={"If-Modified-Since": lm}).status == 304
    old = "Tue, 20 Oct 2015 07:28:00 GMT"
    assert fetch(url, headers={"If-Modified-Since": old}).status == 200
    assert fetch(url, method="POST").json()["hit"] == 4


async def test_stream_is_chunked(fault: FaultServer) -> None:
    """/stream sends N chunks of B bytes with Transfer-Encoding: chunked."""
    url = f"{fault.url}/stream?chunks=5&size=100"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.headers["Transfer-Encoding"] == "chunked"
        body = await resp.read()
    assert body == b"".join(bytes([ord("a") + i]) * 100 for i in range(5))


async def test_sse_sends_events_then_closes(fault: FaultServer) -> None:
    """/sse sends N text/event-stream events and closes the connection."""
    async with aiohttp.ClientSession() as session, session.get(f"{fault.url}/sse?events=3") as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        body = await resp.text()
    assert body == "data: 0\n\ndata: 1\n\ndata: 2\n\n"


def test_redirect_chain(fault: FaultServer) -> None:
    """/redirect/{n} redirects n times before answering 200."""
    reply = fetch(f"{fault.url}/redirect/3")
    assert reply.status == 200
    assert reply.json() == {"redirect": 0, "done": True}
    assert [r.path for r in fault.requests] == [f"/redirect/{i}" for i in (3, 2, 1, 0)]


async def test_redirect_to(fault: FaultServer) -> None:
    """/redirect-to answers the given 3xx status with Location set to url."""
    async with httpx2.AsyncClient(trust_env=False) as client:
        response = await client.get(
            f"{fault.url}/redirect-to", params={"url": "/bytes/1", "status": "307"}
        )
    assert response.status_code == 307
    assert response.headers["Location"] == "/bytes/1"


def test_bytes_are_deterministic(fault: FaultServer) -> None:
    """/bytes/{n} returns n bytes counting 0..255."""
    reply = fetch(f"{fault.url}/bytes/300")
    assert reply.body == bytes(i % 256 for i in range(300))
    head = fetch(f"{fault.url}/bytes/300", method="HEAD")
    assert (head.body, head.headers["Content-Length"]) == (b"", "300")


def test_close_ends_the_connection(fault: FaultServer) -> None:
    """/close answers with Connection: close and then closes the socket."""
    raw = raw_exchange(fault.port, b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
    status_line, headers, _ = split_response(raw)
    assert status_line == "HTTP/1.1 200 OK"
    assert headers["connection"] == "close"
    assert wait_until(lambda: fault.open_connections == 0)


def test_malformed_request_gets_400(fault: FaultServer) -> None:
    """A malformed request line is answered with 400 and the connection closed."""
    raw = raw_exchange(fault.port, b"NONSENSE\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400 ")


async def test_added_route_is_served(fault: FaultServer) -> None:
    """Routes can be added at runtime with add_route."""
    from tests.servers.http1 import Request, ResponseWriter

    async def teapot(req: Request, w: ResponseWriter) -> None:
        await w.send_json({"tea": req.path_params[0]}, 418)

    added = fault.add_route(r"/smoke-teapot/(\w+)", teapot)
    try:
        async with httpx2.AsyncClient(trust_env=False) as client:
            response = await client.get(f"{fault.url}/smoke-teapot/green")
    finally:
        fault.remove_route(added)
    assert (response.status_code, response.json()) == (418, {"tea": "green"})


# ------------------------------------------------------------------ other servers
def test_httpbin_get(httpbin_server: HttpbinServer) -> None:
    """httpbin answers /get with the query arguments it received."""
    reply = fetch(f"{httpbin_server.url}/get?x=1")
    assert reply.status == 200
    assert reply.json()["args"] == {"x": "1"}


def test_redis_ping_set_get(redis_server: RedisServer) -> None:
    """The redis-server answers PING, SET and GET."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.ping() is True
        assert client.set("smoke", "value") is True
        assert client.get("smoke") == b"value"
    finally:
        client.close()
    assert redis_server.host == "127.0.0.1"


async def test_h2_server_speaks_http2(h2_server: H2Server) -> None:
    """The hypercorn server negotiates HTTP/2 and multiplexes on one connection."""
    h2_server.reset()
    async with httpx2.AsyncClient(
        http2=True, verify=h2_server.ssl_context(), trust_env=False
    ) as client:
        responses = await asyncio.gather(*(client.get(f"{h2_server.url}/p{i}") for i in range(3)))
    assert {r.http_version for r in responses} == {"HTTP/2"}
    assert [r.json() for r in responses] == [
        {"http_version": "2", "path": f"/p{i}"} for i in range(3)
    ]
    assert h2_server.connections_seen == 1
    assert h2_server.requests_seen == 3
